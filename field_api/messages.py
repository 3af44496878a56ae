"""Every non-error text a person reads, with its templates in zh-CN and en.

Flags, reasons, gaps and failures are stored as a stable ``code`` and its ``params`` (plus the
English text in their old text column, for logs and older clients); an API answer renders them
in the request's language (:func:`field_api.language.language_of`) as ``message``, next to
``code`` and ``params``. The shape is that of :mod:`field_api.error_codes`: key -> zh-CN and en
templates with ``{name}`` placeholders filled from ``params``.

Params are language-neutral values: ids, numbers, codes, and times already written in China time
(``YYYY-MM-DD HH:MM``, :func:`china_minute`), or a name in each language
(``{"zh-CN": ..., "en": ...}``). A param may itself be a message
(``{"code": ..., "params": {...}}``) or a list of messages: it is rendered in the same language
(a list joined with the language's separator), so a reason made of parts stays translatable.
``tests/field_api/test_messages.py`` checks that every key has both languages with the same
placeholders.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from field_api.common.clock import to_china

LANGUAGES: Final = ("zh-CN", "en")
DEFAULT_LANGUAGE: Final = "zh-CN"
SEPARATORS: Final[dict[str, str]] = {"zh-CN": "；", "en": "; "}
_LIST_SEPARATORS: Final[dict[str, str]] = {"zh-CN": "、", "en": ", "}


def _m(zh: str, en: str) -> dict[str, str]:
    return {"zh-CN": zh, "en": en}


MESSAGES: Final[dict[str, dict[str, str]]] = {
    # -- evidence flags (field_api.media.rules.FlagCode): "media_flag.<code>" --------------------
    "media_flag.gps_missing": _m("照片没有 GPS 位置", "the photo carries no GPS position"),
    "media_flag.order_location_missing": _m(
        "工单没有位置，无法与照片的 GPS 位置比对",
        "the work order has no location to compare the photo's GPS position with",
    ),
    "media_flag.gps_too_far": _m(
        "拍摄地点距工单位置 {distance_m} 米（上限 {limit_m} 米）",
        "taken {distance_m} m from the order's location (limit {limit_m} m)",
    ),
    "media_flag.time_missing": _m("照片没有拍摄时间", "the photo carries no capture time"),
    "media_flag.time_before_acceptance": _m(
        "拍摄于 {taken}（北京时间），早于申请受理时间 {accepted}{note}",
        "taken {taken} China time, before the application was accepted at {accepted}{note}",
    ),
    "media_flag.time_after_upload": _m(
        "拍摄于 {taken}（北京时间），晚于上传时间 {uploaded}{note}",
        "taken {taken} China time, after it was uploaded at {uploaded}{note}",
    ),
    "media_flag.camera_offset_assumed": _m(
        "（相机时间按 UTC{offset} 读取）", " (camera time read as UTC{offset})"
    ),
    "media_flag.reused_photo": _m(
        "与工单 {other_order} 的照片 {other_photo} 几乎相同（汉明距离 {distance}）",
        "nearly identical (Hamming distance {distance}) to photo {other_photo} "
        "on work order {other_order}",
    ),
    "media_flag.image_unreadable": _m(
        "照片无法解码：{problem}", "the photo cannot be decoded: {problem}"
    ),
    "media_flag.barcode_unreadable": _m(
        "照片中无法识别 Code 128 或二维码",
        "no Code 128 or QR symbol could be decoded from the photo",
    ),
    "media_flag.barcode_mismatch": _m(
        "终端上报 {scanned}，但照片显示 {decoded}",
        "the terminal sent {scanned} but the photo shows {decoded}",
    ),
    "media_flag.truncated": _m(
        "照片的图像数据不完整（结束标记前的数据残缺），缺失部分由解码器补齐",
        "the photo's image data is cut short (an end marker follows incomplete data); "
        "the missing part was filled in by the decoder",
    ),
    "media_flag.trailing_data": _m(
        "图像结束后还有 {trailing_bytes} 字节不属于任何图像",
        "{trailing_bytes} bytes follow the end of the image and belong to no image",
    ),
    # -- why a stored photo could not be analysed (field_api.media.service) -------------------
    "media_analysis.unreadable": _m(
        "无法读取该 {media_type} 图像", "the {media_type} image cannot be read"
    ),
    "media_analysis.corrupt": _m("图像数据残缺或损坏", "the image is truncated or corrupt"),
    "media_analysis.truncated": _m(
        "JPEG 文件不完整或已损坏（没有图像结束标记）",
        "the JPEG is truncated or corrupt (no end-of-image marker)",
    ),
    "media_analysis.no_pixels": _m("图像没有像素", "the image has no pixels"),
    "media_analysis.too_many_pixels": _m(
        "图像 {width}×{height} 像素，超过 {max_pixels} 像素的上限，拒绝解码",
        "the image has {width}×{height} pixels, over the limit of {max_pixels}; not decoded",
    ),
    "media_analysis.bomb": _m(
        "图像像素过多，拒绝解码", "the image has too many pixels to decode safely"
    ),
    "media_analysis.other": _m("解码器拒绝了该图像", "the decoder refused the image"),
    # -- off-system review flags (field_api.callbacks.rules.FlagKind) --------------------------
    "review_flag.evidence_before_application": _m(
        "有 {count} 项证据拍摄于申请受理（{accepted}）之前；最早一项是 {earliest_label}，"
        "拍摄于 {earliest_at}",
        "{count} evidence item(s) captured before the application was recorded at {accepted}; "
        "earliest {earliest_label} at {earliest_at}",
    ),
    "review_flag.late_recorded_application": _m(
        "客户于 {applied_on} 申请，但系统于 {recorded_on} 才受理，晚了 {days} 个工作日"
        "（阈值 {threshold}）",
        "customer applied on {applied_on} but the application was recorded on {recorded_on}, "
        "{days} working days later (threshold {threshold})",
    ),
    "review_flag.installed_too_soon": _m(
        "受理后 {minutes} 分钟即完成安装（合理的最短时间为 {minimum} 分钟）",
        "installed {minutes} min after acceptance (minimum plausible {minimum} min)",
    ),
    "review_flag.callback_unsatisfied": _m("回访不满意：{why}", "call-back unsatisfied: {why}"),
    "review_flag.satisfaction_low": _m(
        "满意度 {satisfaction} 分（满分 5 分，{at_most} 分及以下为不满意）",
        "satisfaction {satisfaction} of 5 (unsatisfied at {at_most} or less)",
    ),
    "review_flag.complained": _m("客户投诉", "the customer complained"),
    "review_flag.asked_to_pay": _m(
        "客户反映被要求付费", "customer says they were asked to pay"
    ),
    "review_flag.asked_to_apply_offline": _m(
        "客户反映被要求线下申请", "customer says they were asked to apply off the system"
    ),
    "review_flag.visited_more_than_once": _m(
        "客户反映班组上门不止一次", "customer says the crew came more than once"
    ),
    "review_flag.work_started_before_application": _m(
        "客户反映在申请之前就已开工", "customer says work started before the application"
    ),
    # -- one-visit gaps (field_api.visits.rules): "gap.<code>" --------------------------------
    "gap.arrival_position": _m(
        "到场位置距工单位置 {distance_m} 米，现场范围最多 {limit_m} 米",
        "the arrival was recorded {distance_m} m from the order's location; at most {limit_m} m "
        "counts as on site",
    ),
    "gap.photo_site": _m("本工单没有现场照片", "no photo of kind site for this order"),
    "gap.scheme": _m("本工单没有已确认的供电方案", "no accepted supply scheme for this order"),
    "gap.contract_missing": _m("尚未生成合同", "no contract generated yet"),
    "gap.contract_unsigned": _m(
        "客户尚未签署合同", "the contract is not signed by the customer yet"
    ),
    "gap.kit_issued": _m("本工单尚未从仓库领取套件", "no kit issued from a depot for this order"),
    "gap.meter_barcode": _m("没有带照片的电表条码扫描", "no scanned meter barcode with a photo"),
    "gap.meter_barcode_unreadable": _m(
        "电表条码照片无法识别", "the meter barcode photo could not be decoded"
    ),
    "gap.meter_barcode_differs": _m(
        "扫描的电表 {scanned} 与照片中的 {decoded} 不一致",
        "the scanned meter {scanned} differs from the photo's {decoded}",
    ),
    "gap.meter_not_issued": _m(
        "安装的电表 {scanned} 不是出库的电表 {issued}",
        "the installed meter {scanned} is not the issued meter {issued}",
    ),
    "gap.check_missing": _m("{phase} 检查尚未提交", "the {phase} check has not been submitted"),
    "gap.check_failed": _m("第 {attempt} 次检查未通过", "attempt {attempt} failed"),
    "gap.check_item_failed": _m(
        "第 {attempt} 次检查：{label}：{reason}", "attempt {attempt}: {label}: {reason}"
    ),
    "gap.other": _m("{detail}", "{detail}"),
    # -- checklist item failures (field_api.checklists.rules): "check.<what>" -----------------
    "check.not_submitted": _m("未填写", "not submitted"),
    "check.yes": _m("是", "yes"),
    "check.no": _m("否", "no"),
    "check.answered": _m(
        "回答为“{answered}”，要求“{required}”", "answered {answered}, {required} required"
    ),
    "check.not_acceptable": _m(
        "{value} 不合格（合格选项：{options}）", "{value} is not acceptable ({options})"
    ),
    "check.no_scheme_figure": _m(
        "没有可比对的方案数据（{reference}）", "no scheme figure to compare with ({reference})"
    ),
    "check.differs_from_scheme": _m(
        "{value} {unit} 与方案的 {expected} {unit} 不一致",
        "{value} {unit} differs from the scheme's {expected} {unit}",
    ),
    "check.below_lower": _m(
        "{value} {unit} 低于下限 {limit} {unit}{note}",
        "{value} {unit} below the lower limit {limit} {unit}{note}",
    ),
    "check.above_upper": _m(
        "{value} {unit} 高于上限 {limit} {unit}{note}",
        "{value} {unit} above the upper limit {limit} {unit}{note}",
    ),
    "check.small_transformer_limit": _m(
        "（变压器容量 ≤ {kva} kVA 时的限值）", " (limit for transformers ≤ {kva} kVA)"
    ),
    "check.photos_short": _m(
        "{kind} 照片 {have} 张，需要 {required} 张",
        "{have} photo(s) of kind {kind}, {required} required",
    ),
    "check.no_scanned_barcode": _m("没有扫描的电表条码", "no scanned meter barcode"),
    "check.barcode_unreadable": _m("条码照片无法识别", "the barcode photo could not be decoded"),
    "check.barcode_differs": _m(
        "扫描的 {scanned} 与照片中的 {decoded} 不一致",
        "scanned {scanned} does not match the photo's {decoded}",
    ),
    "check.meter_not_issued": _m(
        "扫描的电表 {scanned} 不是出库的电表 {issued}",
        "scanned meter {scanned} is not the issued meter {issued}",
    ),
    "check.empty": _m("为空", "empty"),
    "check.value_problem": _m("{item}：{problem}", "{item}: {problem}"),
    "check.not_on_card": _m("不是检查卡 {card} 的检查项", "not an item of card {card}"),
    "check.judged_from_evidence": _m(
        "由照片和扫描的条码判定，不接受填报值",
        "judged from the photos and the scanned barcode, not from a submitted value",
    ),
    "check.expected_yes_no": _m("应为是或否", "expected true or false"),
    "check.expected_number": _m("应为以 {unit} 为单位的数字", "expected a number in {unit}"),
    "check.expected_finite": _m("应为有限的数字", "expected a finite number"),
    "check.expected_one_of": _m("应为以下之一：{options}", "expected one of {options}"),
    "check.expected_text": _m("应为文字", "expected text"),
    "check.impossible": _m("{value} {unit} 不可能：{why}", "{value} {unit} is impossible: {why}"),
    "check.why_voltage": _m(
        "低压交流读数在 0 到 1000 V 之间", "a low-voltage AC reading lies between 0 and 1000 V"
    ),
    "check.why_resistance": _m("电阻不能为负", "a resistance cannot be negative"),
    "check.why_current": _m("电流额定值不能为负", "a current rating cannot be negative"),
    "check.why_section": _m("截面积不能为负", "a cross-section cannot be negative"),
    "check.why_length": _m("长度或高度不能为负", "a length or height cannot be negative"),
    "check.why_time": _m("时间不能为负", "a time cannot be negative"),
    "check.why_temperature": _m(
        "温度不能低于绝对零度", "a temperature cannot be below absolute zero"
    ),
    "check.more_photos": _m(
        "{item}：还需 {more} 张 {kind} 照片（已有 {have} 张，需要 {required} 张）",
        "{item}: {more} more photo(s) of kind {kind} ({have} of {required})",
    ),
    "check.barcode_photo_needed": _m(
        "{item}：需要一张带扫描电表号的条码照片",
        "{item}: a barcode photo with the scanned meter number",
    ),
    "check.wrong_form": _m("{value} 格式不符合要求", "{value} is not in the required form"),
    # -- deadlines (field_api.deadlines) -------------------------------------------------------
    "deadline.stage_passed": _m(
        "环节 {clock} 已于 {due_on} 超过时限", "stage {clock} passed its limit on {due_on}"
    ),
    "deadline.stage_due": _m(
        "环节 {clock} 须在 {due_on} 前完成", "stage {clock} is due by {due_on}"
    ),
    "pause_reason.customer_works": _m("客户自有工程未完成", "customer's own works not finished"),
    "pause_reason.customer_absent": _m("客户不在现场", "customer absent at the agreed visit"),
    "pause_reason.customer_documents": _m("客户资料待补", "customer still to provide documents"),
    "pause_reason.customer_request": _m("客户要求延期", "customer asked to postpone"),
    # -- supply schemes (field_api.schemes.rules): failures, proposals, white list -------------
    "scheme_failure.no_kit_for_category": _m(
        "没有适用于{category} {phases} 相接入的标准套件",
        "no standard kit for {category} {phases}-phase connections",
    ),
    "scheme_failure.outside_kits": _m(
        "{capacity_kw} kW 超出{category} {phases} 相标准套件的范围（最大 {up_to_kw} kW）",
        "{capacity_kw} kW is outside the standard kits for {category} {phases}-phase "
        "connections (up to {up_to_kw} kW)",
    ),
    "scheme_failure.direct_meter_limit": _m(
        "负荷电流 {current_a} A 超过套件 {kit} 直接接入电表的上限 {limit_a} A",
        "load current {current_a} A exceeds the direct-meter limit {limit_a} A of kit {kit}",
    ),
    "scheme_failure.breaker": _m(
        "没有额定电流 ≥ {current_a} A 的 {poles} 极断路器",
        "no {poles}-pole breaker rated ≥ {current_a} A",
    ),
    "scheme_failure.no_meter": _m(
        "没有适用于 {current_a} A 的{metering}电表", "no {metering} meter for {current_a} A"
    ),
    "scheme_failure.no_ct": _m(
        "没有一次电流 ≥ {current_a} A 的电流互感器", "no CT with primary ≥ {current_a} A"
    ),
    "scheme_failure.transformer_capacity": _m(
        "变压器 {transformer}（距离 {distance_m} 米）剩余容量 {spare_kva} kVA，"
        "需要 {needed_kva} kVA",
        "transformer {transformer} at {distance_m} m has {spare_kva} kVA spare, "
        "{needed_kva} kVA needed",
    ),
    "scheme_failure.terminal_voltage": _m(
        "经变压器 {transformer} 供电，末端电压估算为 {voltage_v} V，超出 {lower_v}–{upper_v} V",
        "estimated terminal voltage {voltage_v} V outside {lower_v}-{upper_v} V "
        "via transformer {transformer}",
    ),
    "scheme_failure.ampacity": _m(
        "经变压器 {transformer} 供电，没有电缆能承载断路器电流",
        "no cable carries the breaker current via transformer {transformer}",
    ),
    "scheme_failure.voltage_drop": _m(
        "经变压器 {transformer}（路径 {route_m} 米），最优电缆 {cable} 的电压降为 {drop_pct} %，"
        "超过 {budget_pct} % 的限值",
        "via transformer {transformer} ({route_m} m) the best cable {cable} drops {drop_pct} %, "
        "over the {budget_pct} % budget",
    ),
    "scheme_failure.no_transformer_in_reach": _m(
        "客户 {radius_m} 米范围内没有变压器", "no transformer within {radius_m} m of the customer"
    ),
    "scheme_proposal.three_phase": _m(
        "改为三相接入，使用套件 {kit}", "connect three-phase with kit {kit}"
    ),
    "scheme_proposal.other_phases": _m(
        "改为 {phases} 相接入，使用套件 {kit}", "connect {phases}-phase with kit {kit}"
    ),
    "scheme_proposal.high_voltage": _m(
        "超出低压套件范围：需要高压（10 kV）接入",
        "above the low-voltage kits: a high-voltage (10 kV) connection is needed",
    ),
    "scheme_proposal.parallel_cables": _m(
        "按敷设方式 {laying} 没有单根电缆能承载断路器电流：请改用其他敷设方式或并联电缆",
        "no single cable laid by method {laying} carries the breaker current: "
        "choose another laying method or parallel cables",
    ),
    "scheme_proposal.shorten_route": _m(
        "使用 {cable} 时将路径缩短到 {max_m} 米（现为 {route_m} 米），或由新建或更近的变压器供电",
        "shorten the route to {max_m} m (now {route_m} m) with {cable}, "
        "or supply from a new or nearer transformer",
    ),
    "scheme_white_list.grid_short": _m(
        "没有满足规则的供电点（{rules}）：请将申请登记到白名单，待电网改造（新建变压器、增容或"
        "新建低压线路）后再接入",
        "no supply point meets the rules ({rules}): register the request on the white list, "
        "reinforce the grid (new transformer, capacity or LV line), then connect",
    ),
    # -- contract verification (field_api.contracts.signing): "contract_check.<why>" ----------
    "contract_check.valid": _m(
        "有效：工单 {order_id} 的合同由 {signer} 于 {signed_at}（北京时间）签署（密钥 {key}）",
        "valid: contract for order {order_id} signed by {signer} at {signed_at} China time "
        "(key {key})",
    ),
    "contract_check.no_record": _m(
        "文件中没有 fieldops 签署记录", "the file carries no fieldops signing record"
    ),
    "contract_check.attachment_malformed": _m(
        "签署记录附件格式错误", "the signing record attachment is malformed"
    ),
    "contract_check.attachment_too_large": _m(
        "签署记录附件大得不合常理", "the signing record attachment is implausibly large"
    ),
    "contract_check.record_not_json": _m(
        "签署记录不是有效的 JSON 对象", "the signing record is not a valid JSON object"
    ),
    "contract_check.unsupported_algorithm": _m(
        "不支持的签名算法 {algorithm}", "unsupported signature algorithm {algorithm}"
    ),
    "contract_check.no_record_in_envelope": _m(
        "签名信封中没有签署记录", "the envelope carries no record"
    ),
    "contract_check.other_key": _m(
        "由密钥 {key} 签署，而不是给定的公钥 {expected}",
        "signed with key {key}, not with the given public key {expected}",
    ),
    "contract_check.signature_mismatch": _m(
        "服务器签名与签署记录不符", "the server signature does not match the signing record"
    ),
    "contract_check.length_differs": _m(
        "已签署文档的长度与签署记录不符",
        "the signed document's length does not match the record",
    ),
    "contract_check.document_changed": _m(
        "合同文档在签署后被修改", "the contract document was changed after signing"
    ),
    "contract_check.not_a_contract_pdf": _m(
        "已签署的文档不是有效的合同 PDF", "the signed document is not a valid contract PDF"
    ),
    "contract_check.file_changed": _m(
        "文件在签署后被修改（签名部分）",
        "the file was changed after signing (signature section)",
    ),
    # -- CSV column headers: "csv.<column>" (csv_header) ----------------------------------------
    "csv.code": _m("编码", "Code"),
    "csv.name": _m("名称", "Name"),
    "csv.checked": _m("检查数", "Checked"),
    "csv.passed_first": _m("一次通过数", "Passed first time"),
    "csv.rate": _m("比率", "Rate"),
    "csv.item_code": _m("检查项编码", "Item code"),
    "csv.label": _m("检查项", "Item"),
    "csv.failures": _m("不合格次数", "Failures"),
    "csv.share": _m("占比", "Share"),
    "csv.cumulative_share": _m("累计占比", "Cumulative share"),
    "csv.energised": _m("送电数", "Energised"),
    "csv.one_visit": _m("一次上门", "One visit"),
    "csv.order_id": _m("工单号", "Order"),
    "csv.crew_code": _m("班组编码", "Crew code"),
    "csv.crew_name": _m("班组", "Crew"),
    "csv.district_code": _m("供电所编码", "District code"),
    "csv.district_name": _m("供电所", "District"),
    "csv.customer": _m("客户", "Customer"),
    "csv.visits": _m("上门次数", "Visits"),
    "csv.energised_at": _m("送电时间", "Energised at"),
    "csv.clock": _m("时限", "Time limit"),
    "csv.met": _m("按时完成", "Met"),
    "csv.missed": _m("超时", "Missed"),
    "csv.finished": _m("已结束", "Finished"),
    "csv.running": _m("计时中", "Running"),
    "csv.month": _m("月份", "Month"),
    "csv.first_pass_rate": _m("一次通过率", "First-pass rate"),
    "csv.one_visit_rate": _m("一次上门率", "One-visit rate"),
    "csv.compliance_rate": _m("按时完成率", "On-time rate"),
    "csv.line_id": _m("线路", "Line"),
    "csv.class_name": _m("缺陷类别", "Defect class"),
    "csv.severity": _m("严重程度", "Severity"),
    "csv.open_findings": _m("未处理缺陷", "Open findings"),
    "csv.oldest_age_days": _m("最长存续天数", "Oldest (days)"),
    "csv.mean_age_days": _m("平均存续天数", "Mean age (days)"),
    "csv.assets": _m("资产数", "Assets"),
    "csv.seen": _m("已巡视", "Seen"),
    "csv.coverage": _m("覆盖率", "Coverage"),
    "csv.repair_id": _m("抢修单", "Repair order"),
    "csv.finding_id": _m("缺陷", "Finding"),
    "csv.stage": _m("阶段", "Stage"),
    "csv.days_to_on_site": _m("到场天数", "Days to on site"),
    "csv.days_to_repaired": _m("修复天数", "Days to repaired"),
    "csv.days_to_verified": _m("验收天数", "Days to verified"),
    "csv.due_on": _m("到期日", "Due on"),
    "csv.status": _m("状态", "Status"),
    "csv.governing": _m("主时限", "Governing"),
    "csv.provisional": _m("暂定", "Provisional"),
    "csv.paused": _m("已暂停", "Paused"),
    "csv.media_id": _m("影像编号", "Media item"),
    "csv.flag_code": _m("标记", "Flag"),
    "csv.media_kind": _m("影像类型", "Evidence kind"),
    "csv.message": _m("原因", "Reason"),
    "csv.flagged_at": _m("标记时间", "Flagged at"),
    "csv.detected_at": _m("发现时间", "Detected at"),
    "csv.resolved_at": _m("处理时间", "Resolved at"),
    "csv.resolution": _m("处理结果", "Resolution"),
    # supply reliability (order 18)
    "csv.account_no": _m("户号", "Account"),
    "csv.name_masked": _m("户名", "Name"),
    "csv.phone_masked": _m("电话", "Phone"),
    "csv.supply_point": _m("供电点", "Supply point"),
    "csv.supply_kind": _m("供电方式", "Supply kind"),
    "csv.transformer_code": _m("配变", "Transformer"),
    "csv.switch_code": _m("分段开关", "Switch"),
    "csv.feeder": _m("馈线", "Feeder"),
    "csv.district": _m("供电所", "District"),
    "csv.area": _m("城乡", "Urban or rural"),
    "csv.connected_on": _m("接入日期", "Connected on"),
    "csv.removed_on": _m("销户日期", "Removed on"),
    "csv.scope": _m("统计范围", "Scope"),
    "csv.period": _m("统计期", "Period"),
    "csv.served": _m("用户数", "Served"),
    "csv.saidi_h": _m("平均停电时间（小时/户）", "SAIDI (h)"),
    "csv.ytd_saidi_h": _m("年累计平均停电时间（小时/户）", "SAIDI year to date (h)"),
    "csv.saifi": _m("平均停电次数（次/户）", "SAIFI"),
    "csv.caidi_h": _m("平均停电持续时间（小时）", "CAIDI (h)"),
    "csv.asai": _m("供电可靠率", "ASAI"),
    "csv.short_frequency": _m("平均短时停电次数", "Short interruptions per customer"),
    "csv.target_h": _m("目标（小时/户）", "Target (h)"),
    "csv.projection_h": _m("年末预测（小时/户）", "Year-end projection (h)"),
    "csv.projection_method": _m("预测方法", "Projection method"),
    # compensation for service interruptions (order 19)
    "csv.accounts": _m("户号（以;分隔）", "Accounts (;-separated)"),
    "csv.category": _m("用户类别", "Customer category"),
    "csv.covered": _m("政策有规定", "Covered by the policy"),
    "csv.interruptions": _m("停电次数", "Interruptions"),
    "csv.long_interruptions": _m("超时长停电次数", "Long interruptions"),
    "csv.beyond_interruptions": _m("超次数停电次数", "Interruptions beyond the yearly count"),
    "csv.long_credit": _m("超时长赔偿（元）", "Long-interruption credit (yuan)"),
    "csv.beyond_credit": _m("超次数赔偿（元）", "Frequency credit (yuan)"),
    "csv.total": _m("赔偿合计（元）", "Total credit (yuan)"),
    "csv.period_start": _m("统计期开始", "Period start"),
    "csv.period_end": _m("统计期结束", "Period end"),
    # planned-outage budget, requests, merges, live-line work (order 19)
    "csv.year": _m("年度", "Year"),
    "csv.customer_hours": _m("时户数", "Customer-hours"),
    "csv.set": _m("已核定", "Set by a planner"),
    "csv.proposed_customer_hours": _m("建议时户数", "Proposed customer-hours"),
    "csv.method": _m("测算方法", "Method"),
    "csv.fault_share": _m("上年故障停电占比", "Last year's fault share"),
    "csv.customers": _m("用户数", "Customers"),
    "csv.used_customer_hours": _m("已用时户数", "Customer-hours used"),
    "csv.left_customer_hours": _m("剩余时户数", "Customer-hours left"),
    "csv.live_line_customer_hours_avoided": _m(
        "带电作业减少时户数", "Customer-hours avoided by live-line work"
    ),
    "csv.id": _m("编号", "Id"),
    "csv.state": _m("状态", "State"),
    "csv.work": _m("工作内容", "Work"),
    "csv.requester": _m("申请人", "Requester"),
    "csv.start_at": _m("停电开始", "Start"),
    "csv.end_at": _m("停电结束", "End"),
    "csv.hours": _m("停电时长（小时）", "Hours"),
    "csv.budget_left_after": _m("批准后剩余时户数", "Budget left after it"),
    "csv.overspend_reason": _m("超预算理由", "Overspend reason"),
    "csv.merged_into": _m("合并至", "Merged into"),
    "csv.outage_id": _m("停电记录", "Outage record"),
    "csv.request_ids": _m("申请编号", "Requests"),
    "csv.separate_customer_hours": _m("分别停电时户数", "Customer-hours apart"),
    "csv.merged_customer_hours": _m("合并停电时户数", "Customer-hours merged"),
    "csv.saved_customer_hours": _m("节约时户数", "Customer-hours saved"),
    "csv.done_on": _m("作业日期", "Done on"),
    "csv.outage_hours": _m("停电作业所需小时", "Hours an outage would take"),
    "csv.customer_hours_avoided": _m("减少时户数", "Customer-hours avoided"),
    "csv.budget_customer_hours": _m("预算时户数", "Budget (customer-hours)"),
    "csv.cumulative_customer_hours": _m("累计已用时户数", "Cumulative customer-hours used"),
    # -- webhook targets refused (field_api.tracking.targets) ------------------------------
    "webhook_target.control_characters": _m(
        "地址含有空白或控制字符", "the URL contains whitespace or control characters"
    ),
    "webhook_target.scheme": _m(
        "地址须以 https:// 开头（非生产环境可用 http://）",
        "the URL must start with https:// (or http:// outside production)",
    ),
    "webhook_target.https_only": _m("生产环境只接受 https 地址", "production accepts https only"),
    "webhook_target.credentials": _m(
        "地址不能含用户名和密码（user:password@）",
        "the URL must not carry credentials (user:password@)",
    ),
    "webhook_target.no_host": _m("地址缺少主机名", "the URL has no host"),
    "webhook_target.port": _m("地址的端口无效", "the URL has an invalid port"),
    "webhook_target.address": _m("{address} 是{kind}", "{address} is {kind}"),
    "webhook_target.resolves_to": _m(
        "{host} 解析到 {address}，它是{kind}", "{host} resolves to {address}, {kind}"
    ),
    "webhook_target.loopback_name": _m(
        "{host} 指向本机回环接口", "{host} names the loopback interface"
    ),
    "webhook_target.unresolved": _m("无法解析主机 {host}", "host {host} does not resolve"),
    "address_kind.metadata": _m("云服务元数据地址", "a cloud metadata address"),
    "address_kind.loopback": _m("本机回环地址", "a loopback address"),
    "address_kind.unspecified": _m("未指定地址", "the unspecified address"),
    "address_kind.link_local": _m("链路本地地址", "a link-local address"),
    "address_kind.multicast": _m("组播地址", "a multicast address"),
    "address_kind.reserved": _m("保留地址", "a reserved address"),
    "address_kind.private": _m("内网地址", "a private address"),
    "address_kind.not_public": _m("非公网地址", "not a public address"),
}


@dataclass(frozen=True)
class Message:
    """A stable key and the language-neutral values its templates need."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The stored (JSON) form, also usable as a nested param."""
        return {"code": self.code, "params": dict(self.params)}

    def render(self, language: str = DEFAULT_LANGUAGE) -> str:
        return render(self.code, self.params, language)

    @property
    def english(self) -> str:
        """The English text (logs, the old text columns)."""
        return self.render("en")


def placeholders(template: str) -> set[str]:
    """The ``{name}`` fields a template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def china_minute(moment: datetime) -> str:
    """A time for people: China time to the minute (a naive value is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return to_china(moment).strftime("%Y-%m-%d %H:%M")


def is_message(value: Any) -> bool:
    """Whether ``value`` is a stored message: ``{"code": str, "params": {...}}``."""
    return _is_message(value)


def _is_message(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("code"), str) and set(value) <= {
        "code",
        "params",
    }


def param_text(value: Any, language: str) -> Any:
    """A param as its template sees it: a message (or a list of messages) rendered in
    ``language``, a list joined; anything else unchanged."""
    return _value(value, language)


def _value(value: Any, language: str) -> Any:
    if isinstance(value, Mapping) and set(value) == set(LANGUAGES):  # a text in each language
        return value[language]
    if _is_message(value):
        return render(value["code"], value.get("params") or {}, language)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = [_value(v, language) for v in value]
        messages = any(_is_message(v) for v in value)
        sep = (SEPARATORS if messages else _LIST_SEPARATORS)[language]
        return sep.join(str(i) for i in items)
    return value


def render(code: str, params: Mapping[str, Any], language: str = DEFAULT_LANGUAGE) -> str:
    """The text of ``code`` in ``language`` (zh-CN when unknown); the code itself if unlisted.

    Nested messages and lists are rendered in the same language; a missing param stays
    ``{name}``.
    """
    templates = MESSAGES.get(code)
    if templates is None:
        return code
    lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
    values = {k: _value(v, lang) for k, v in params.items()}

    class _Keep(dict[str, Any]):
        def __missing__(self, key: str) -> str:
            return "{" + key + "}"

    return templates[lang].format_map(_Keep(values))


def render_all(messages: Sequence[Mapping[str, Any]], language: str = DEFAULT_LANGUAGE) -> str:
    """Several stored messages as one text, joined with the language's separator."""
    return SEPARATORS.get(language, SEPARATORS[DEFAULT_LANGUAGE]).join(
        render(m["code"], m.get("params") or {}, language) for m in messages
    )


def csv_header(columns: Sequence[str], language: str = DEFAULT_LANGUAGE) -> list[str]:
    """The people's names of CSV ``columns`` in ``language`` (``csv.<column>``; a column
    without an entry keeps its own name)."""
    return [
        render(f"csv.{c}", {}, language) if f"csv.{c}" in MESSAGES else c for c in columns
    ]
