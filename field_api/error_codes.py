"""Every error ``code`` the service sends, with its message templates in zh-CN and en.

The error body (:mod:`field_api.errors`) carries ``code`` and ``params``; a client (order 12:
the service itself) renders ``MESSAGES[code][language].format(**params)`` in the user's
language (zh-CN by default). Templates name only keys the raise sites put in ``params`` (ids,
limits, names; never personal data or secrets); ``tests/field_api/test_errors.py`` checks that
every code raised in ``field_api`` is listed here in both languages and that every placeholder
is given at each raise site.

Codes are stable: a client may rely on them. Rename one only with a deprecation period; add new
ones freely (``<slice>.<what>``, lower case, one dot).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Any, Final

from field_api import messages
from field_api.common import i18n

LANGUAGES: Final = ("zh-CN", "en")
DEFAULT_LANGUAGE: Final = "zh-CN"


def _m(zh: str, en: str) -> dict[str, str]:
    return {"zh-CN": zh, "en": en}


MESSAGES: Final[dict[str, dict[str, str]]] = {
    # -- class defaults (field_api.errors): a raise that names no code of its own ------------
    "bad_request": _m("请求无效", "bad request"),
    "unauthorized": _m("需要登录", "authentication required"),
    "forbidden": _m("无权执行此操作", "not allowed"),
    "not_found": _m("未找到", "not found"),
    "conflict": _m("与当前状态冲突", "conflicts with the current state"),
    "invalid_transition": _m("当前状态不允许此操作", "not allowed in the current state"),
    "idempotency_conflict": _m("幂等键冲突", "idempotency key conflict"),
    "out_of_stock": _m("库存不足", "out of stock"),
    "precondition_failed": _m("前提条件不满足", "precondition failed"),
    "payload_too_large": _m("内容过大", "payload too large"),
    "unsupported_media": _m("不支持的内容类型", "unsupported media type"),
    "validation_failed": _m("输入无效", "invalid input"),
    "service_unavailable": _m("服务暂不可用，请稍后重试", "service unavailable; retry later"),
    # -- framework, middleware (field_api.main, field_api.idempotency.middleware) -------------
    "request.invalid": _m("请求参数无效", "invalid request fields"),
    "request.malformed_json": _m("请求体不是有效的 JSON", "the request body is not valid JSON"),
    "request.too_large": _m(
        "请求体超过 {limit_bytes} 字节", "the request body exceeds {limit_bytes} bytes"
    ),
    "request.date_range_reversed": _m(
        "日期范围的结束早于开始", "the date range ends before it starts"
    ),
    "request.date_range_too_long": _m(
        "日期范围过长（最多 {months} 个月）", "the date range is too long (at most {months} months)"
    ),
    "request.error": _m("请求失败（HTTP {status}）", "request failed (HTTP {status})"),
    "route.not_found": _m("地址不存在", "no such address"),
    "route.method_not_allowed": _m(
        "此地址不支持 {method} 方法", "method {method} is not allowed here"
    ),
    "server.internal": _m("服务器内部错误", "unexpected server error"),
    "server.not_ready": _m(
        "服务未就绪：{failing}检查失败", "the service is not ready: the {failing} check failed"
    ),
    "server.busy": _m(
        "数据库繁忙，请 {retry_after_s} 秒后重试",
        "the database is busy; retry in {retry_after_s} s",
    ),
    "idempotency.key_too_long": _m(
        "Idempotency-Key 不能超过 {max_length} 个字符",
        "the Idempotency-Key is longer than {max_length} characters",
    ),
    "idempotency.key_reused": _m(
        "此 Idempotency-Key 已用于另一个请求", "this Idempotency-Key was used with another request"
    ),
    "idempotency.in_progress": _m(
        "使用此 Idempotency-Key 的请求正在处理，请 {retry_after_s} 秒后重试",
        "a request with this Idempotency-Key is in progress; retry in {retry_after_s} s",
    ),
    # -- auth, users, districts, crews ------------------------------------------------------
    "auth.missing_token": _m("缺少访问令牌", "missing bearer token"),
    "auth.unknown_token": _m("访问令牌无效", "unknown token"),
    "auth.token_revoked": _m("访问令牌已撤销", "the token was revoked"),
    "auth.user_deactivated": _m("用户已停用", "the user is deactivated"),
    "auth.demo_token_refused": _m(
        "生产环境不接受演示令牌", "demo tokens are refused in production"
    ),
    "auth.role_forbidden": _m(
        "角色 {role} 无权执行此操作（需要：{allowed}）",
        "role {role} may not do this (needs one of: {allowed})",
    ),
    "auth.user_not_found": _m("用户 {user_id} 不存在", "user {user_id} does not exist"),
    "auth.role_change_crew": _m(
        "角色变更不能让用户 {user_id} 加入或离开班组，请新建用户",
        "a role change cannot move user {user_id} into or out of a crew; create a new user",
    ),
    "auth.last_admin": _m(
        "此操作（{action}）将导致没有可登录的管理员，请先创建或启用另一名管理员",
        "{action} would leave no active admin able to sign in; create or enable another admin "
        "first",
    ),
    "auth.token_not_found": _m("令牌 {token_id} 不存在", "token {token_id} does not exist"),
    "user.crew_required": _m("班组成员必须属于一个班组", "a crew member needs a crew"),
    "user.crew_not_allowed": _m(
        "只有班组成员属于班组（角色：{role}）", "only crew members belong to a crew (role {role})"
    ),
    "district.not_found": _m(
        "供电所 {district_id} 不存在", "district {district_id} does not exist"
    ),
    "district.unknown": _m("未知供电所 {district_code}", "unknown district {district_code}"),
    "district.exists": _m("供电所 {district_code} 已存在", "district {district_code} exists"),
    "crew.not_found": _m("班组 {crew_id} 不存在", "crew {crew_id} does not exist"),
    "crew.unknown": _m("未知班组 {crew_code}", "unknown crew {crew_code}"),
    "crew.exists": _m("班组 {crew_code} 已存在", "crew {crew_code} exists"),
    "demo.refused_in_production": _m(
        "生产环境不接受演示数据和演示令牌", "demo data and demo tokens are refused in production"
    ),
    # -- jobs -----------------------------------------------------------------------------
    "jobs.not_found": _m("未找到任务 {id}", "job {id} not found"),
    "jobs.not_dead": _m(
        "任务 {id} 的状态为 {state}，只能重试失败的任务",
        "job {id} is {state}: only a dead job can be retried",
    ),
    "sms.cannot_resend": _m(
        "任务 {id} 是发给 {phone} 的短信，失败时其号码和内容已清除，无法重发；"
        "请重新申请（如验证码）",
        "job {id} was a text message to {phone}; its number and text were wiped when it failed, "
        "so it cannot be re-sent: request a new one (a new signing code, say)",
    ),
    # -- audit ----------------------------------------------------------------------------
    "audit.checkpoint_name_taken": _m(
        "无法为新的检查点文件命名", "could not name a new checkpoint file"
    ),
    "audit.reanchor_reason_missing": _m("重新锚定需要说明原因", "a re-anchor needs a reason"),
    "audit.chain_broken": _m(
        "审计链校验失败（{problem}）；只能对完整恢复的历史重新锚定",
        "the audit chain does not verify ({problem}); only an intact history can be re-anchored",
    ),
    "audit.unknown_table": _m(
        "没有名为 {entity_type} 的审计表", "no audited table named {entity_type}"
    ),
    # -- work orders -----------------------------------------------------------------------
    "work_order.not_found": _m("工单 {order_id} 不存在", "work order {order_id} does not exist"),
    "work_order.forbidden": _m(
        "角色 {role} 无权访问工单 {order_id}", "role {role} may not access work order {order_id}"
    ),
    "work_order.list_forbidden": _m(
        "角色 {role} 无权访问接电工单", "role {role} has no access to connection orders"
    ),
    "work_order.capacity_exceeded": _m(
        "申请容量 {capacity_kw} kW 超过本供电所低压接入上限 {ceiling_kw} kW",
        "capacity {capacity_kw} kW exceeds the district's low-voltage ceiling of {ceiling_kw} kW",
    ),
    "work_order.assign_wrong_stage": _m(
        "工单 {order_id} 处于 {stage} 阶段，不能派工",
        "work order {order_id} is {stage}: it cannot be assigned",
    ),
    "work_order.transition_forbidden": _m(
        "角色 {role} 不能将工单转到 {target}", "role {role} may not move an order to {target}"
    ),
    "work_order.transition_refused": _m(
        "工单 {order_id} 不能从 {stage} 转到 {target}（可转到：{allowed}）",
        "work order {order_id} cannot move from {stage} to {target} (allowed: {allowed})",
    ),
    "work_order.reason_required": _m(
        "转到 {target} 需要说明原因", "moving to {target} needs a reason"
    ),
    "work_order.whitelist_date_required": _m(
        "列入白名单需要填写电网改造的预计完成日期",
        "white-listing needs the expected date of the grid reinforcement",
    ),
    # -- visits ----------------------------------------------------------------------------
    "visit.not_found": _m(
        "工单 {order_id} 的上门记录 {visit_id} 不存在",
        "visit {visit_id} of work order {order_id} does not exist",
    ),
    "visit.order_unassigned": _m(
        "工单 {order_id} 尚未派给班组", "work order {order_id} is not assigned to a crew"
    ),
    "visit.no_site_work": _m(
        "工单 {order_id} 处于 {stage} 阶段，没有现场工作",
        "work order {order_id} is {stage}: there is no site work left",
    ),
    "visit.still_open": _m(
        "工单 {order_id} 的上门记录 {visit_id} 尚未结束，请先离场",
        "visit {visit_id} of work order {order_id} is still open; depart first",
    ),
    "visit.closed": _m(
        "上门记录 {visit_id} 已结束（{outcome}）", "visit {visit_id} is closed ({outcome})"
    ),
    "visit.wrong_stage": _m(
        "工单 {order_id} 处于 {stage} 阶段，不在一次上门流程中",
        "work order {order_id} is {stage}: not on the one-visit path",
    ),
    "visit.already_departed": _m(
        "上门记录 {visit_id} 已离场", "visit {visit_id} has already departed"
    ),
    # -- deadlines, calendar -------------------------------------------------------------
    "deadline.forbidden": _m(
        "角色 {role} 无权访问接电时限", "role {role} has no access to connection deadlines"
    ),
    "deadline.no_clock_running": _m(
        "工单 {order_id} 处于 {stage} 阶段，没有计时",
        "work order {order_id} is {stage}: no clock runs",
    ),
    "deadline.pause_running": _m(
        "工单 {order_id} 已有进行中的暂停，请先结束",
        "work order {order_id} already has a pause running; end it first",
    ),
    "deadline.pause_not_found": _m(
        "工单 {order_id} 的暂停 {pause_id} 不存在",
        "pause {pause_id} of work order {order_id} does not exist",
    ),
    "deadline.pause_already_ended": _m("暂停 {pause_id} 已结束", "pause {pause_id} already ended"),
    "deadline.unknown_pause_reason": _m(
        "未知暂停原因 {reason}（可选：{allowed}）",
        "unknown pause reason {reason} (allowed: {allowed})",
    ),
    "deadline.visit_wrong_stage": _m(
        "工单 {order_id} 处于 {stage} 阶段，不能预约上门",
        "work order {order_id} is {stage}: no visit can be booked",
    ),
    "deadline.visit_window_reversed": _m(
        "预约时段的结束必须晚于开始", "the visit window must end after it starts"
    ),
    "deadline.visit_window_too_long": _m(
        "预约时段最长 {max_hours} 小时", "a visit window is at most {max_hours} hours long"
    ),
    "deadline.visit_not_found": _m(
        "工单 {order_id} 的预约 {visit_id} 不存在",
        "booked visit {visit_id} of work order {order_id} does not exist",
    ),
    "deadline.visit_already_cancelled": _m(
        "预约 {visit_id} 已取消", "booked visit {visit_id} is already cancelled"
    ),
    "deadline.time_limits_invalid": _m(
        "时限配置 {source} 无效", "time limits {source} are invalid"
    ),
    "deadline.time_limits_unreadable": _m(
        "无法读取时限配置 {path}", "cannot read the time limits {path}"
    ),
    "deadline.time_limits_error": _m("时限配置有误", "the time limits are misconfigured"),
    "deadline.no_time_limits": _m(
        "类别 {category} 没有时限配置", "no time limits for category {category}"
    ),
    "calendar.invalid": _m("工作日历无法计算", "the working-day calendar cannot answer"),
    "calendar.data_missing": _m(
        "缺少 {years} 年的节假日安排，请在日历覆盖文件中补充",
        "no holiday schedule for {years}; add it to the calendar override file",
    ),
    "calendar.override_invalid": _m(
        "日历覆盖文件 {path} 无效", "calendar override {path} is invalid"
    ),
    "calendar.override_unreadable": _m(
        "无法读取日历覆盖文件 {path}", "cannot read calendar override {path}"
    ),
    "calendar.pause_reversed": _m(
        "暂停的结束（{end}）早于开始（{start}）",
        "a pause cannot end ({end}) before it starts ({start})",
    ),
    "calendar.negative_days": _m(
        "工作日数不能为负（{days}）", "a number of working days cannot be negative ({days})"
    ),
    "calendar.no_working_day": _m(
        "{date} 之后一年内没有工作日", "no working day for a year after {date}"
    ),
    # -- schemes, network ----------------------------------------------------------------
    "scheme.not_found": _m(
        "供电方案 {scheme_id} 不存在", "supply scheme {scheme_id} does not exist"
    ),
    "scheme.none_accepted": _m(
        "工单 {order_id} 没有已确认的供电方案",
        "work order {order_id} has no accepted supply scheme",
    ),
    "scheme.wrong_stage": _m(
        "工单 {order_id} 处于 {stage} 阶段：供电方案在勘查后、签约前申请",
        "work order {order_id} is {stage}: a scheme is requested once surveyed and before the "
        "contract is signed",
    ),
    "scheme.input_invalid": _m("方案输入无效：{reason}", "invalid scheme input: {reason}"),
    "network.file_too_large": _m(
        "电网文件最大 {limit_bytes} 字节", "network files are limited to {limit_bytes} bytes"
    ),
    "network.file_invalid": _m("电网文件无效：{reason}", "invalid network file: {reason}"),
    "network.rows_invalid": _m(
        "{filename} 有 {count} 行无效，未导入任何数据",
        "{count} row(s) of {filename} are invalid; nothing was imported",
    ),
    "network.transformer_not_found": _m(
        "变压器 {transformer_code} 不存在", "transformer {transformer_code} does not exist"
    ),
    "network.position_invalid": _m("位置无效：{reason}", "invalid position: {reason}"),
    # -- reliability -----------------------------------------------------------------------
    "reliability.role_forbidden": _m(
        "角色 {role} 无权执行此操作（需要：{allowed}）",
        "role {role} may not do this (needs one of: {allowed})",
    ),
    "reliability.file_too_large": _m(
        "供电可靠性文件最大 {limit_bytes} 字节",
        "reliability files are limited to {limit_bytes} bytes",
    ),
    "reliability.file_invalid": _m("文件无效：{reason}", "invalid file: {reason}"),
    "reliability.rows_invalid": _m(
        "{filename} 有 {count} 行无效，未导入任何数据",
        "{count} row(s) of {filename} are invalid; nothing was imported",
    ),
    "reliability.month_in_future": _m("{month} 尚未开始", "{month} has not begun"),
    "reliability.year_in_future": _m("{year} 年尚未开始", "{year} has not begun"),
    "reliability.outage_invalid": _m("停电记录无效：{reason}", "invalid outage: {reason}"),
    "reliability.outage_exists": _m("停电记录 {ref} 已存在", "outage {ref} is already recorded"),
    "reliability.outage_not_found": _m(
        "停电记录 {outage_id} 不存在", "outage {outage_id} does not exist"
    ),
    "reliability.outage_closed": _m(
        "停电记录 {outage_id} 已结束", "outage {outage_id} is closed"
    ),
    "reliability.outage_open": _m(
        "停电记录 {outage_id} 尚未结束", "outage {outage_id} is still open"
    ),
    "reliability.compensation_policy_missing": _m(
        "未设置停电赔偿政策（{variable}），无法计算赔偿",
        "no compensation policy is set ({variable}); compensation cannot be computed",
    ),
    "reliability.compensation_policy_invalid": _m(
        "停电赔偿政策无效：{reason}", "the compensation policy is invalid: {reason}"
    ),
    "reliability.compensation_period_invalid": _m(
        "统计期结束日 {end} 早于开始日 {start}",
        "the period ends ({end}) before it starts ({start})",
    ),
    "reliability.compensation_period_too_long": _m(
        "统计期最长 {max_days} 天", "the period is at most {max_days} days"
    ),
    # planned outages, budgets, merges, live-line work (order 19)
    "reliability.planned_outage_invalid": _m(
        "计划停电申请无效：{reason}", "invalid planned outage: {reason}"
    ),
    "reliability.section_unknown": _m(
        "开关 {switch_code} 没有馈线分段", "switch {switch_code} has no feeder section"
    ),
    "reliability.planned_outage_not_found": _m(
        "计划停电申请 {request_id} 不存在", "planned outage {request_id} does not exist"
    ),
    "reliability.planned_outage_state": _m(
        "计划停电申请 {request_id} 当前状态为 {state}，不能执行此操作",
        "planned outage {request_id} is {state}: this is not possible now",
    ),
    "reliability.planned_outage_begun": _m(
        "计划停电 {request_id} 已开始停电", "planned outage {request_id} has begun"
    ),
    "reliability.budget_overspent": _m(
        "计划停电 {request_id} 需 {customer_hours} 时户，将超出{district}供电所 {year} 年度预算"
        "（超出后剩余 {left}）；须由计划员填写超预算理由后批准",
        "planned outage {request_id} needs {customer_hours} customer-hours and would overspend "
        "{district}'s {year} budget (left after it: {left}); a planner may approve it with an "
        "overspend reason",
    ),
    "reliability.merge_invalid": _m("无法合并：{reason}", "cannot merge: {reason}"),
    "reliability.district_unknown": _m(
        "供电所 {district} 没有馈线分段", "district {district} has no feeder section"
    ),
    "reliability.live_line_invalid": _m(
        "带电作业记录无效：{reason}", "invalid live-line work: {reason}"
    ),
    # -- contracts -------------------------------------------------------------------------
    "contract.not_found": _m(
        "工单 {order_id} 尚无合同", "work order {order_id} has no contract yet"
    ),
    "contract.already_signed": _m(
        "合同 {contract_no} 已签署", "contract {contract_no} is already signed"
    ),
    "contract.wrong_stage": _m(
        "工单 {order_id} 处于 {stage} 阶段，不能生成或签署合同",
        "work order {order_id} is {stage}: the contract cannot be generated or signed now",
    ),
    "contract.scheme_terms_missing": _m(
        "已确认的方案 {scheme_id} 缺少 {missing}，请重新答复方案",
        "the accepted scheme {scheme_id} lacks {missing}; answer the scheme again",
    ),
    "contract.otp_too_soon": _m(
        "验证码刚刚发送，请 {wait_s} 秒后再申请", "a code was sent moments ago; retry in {wait_s} s"
    ),
    "contract.otp_daily_limit": _m(
        "24 小时内已发送 {sent} 次验证码，今天不能再发送",
        "{sent} codes were sent for this contract in the last 24 h; no more today",
    ),
    "contract.otp_not_sent": _m(
        "尚未发送验证码，请先申请", "no one-time code was sent for this contract; request one first"
    ),
    "contract.otp_wrong": _m(
        "验证码错误，还可尝试 {attempts_left} 次",
        "wrong one-time code; {attempts_left} attempt(s) left",
    ),
    "contract.otp_expired": _m(
        "验证码已过期，请重新申请", "the one-time code has expired; request a new one"
    ),
    "contract.otp_exhausted": _m(
        "错误次数过多，请重新申请验证码", "too many wrong attempts; request a new one-time code"
    ),
    "contract.otp_used": _m(
        "验证码已使用，请重新申请", "the one-time code was already used; request a new one"
    ),
    "contract.signature_empty": _m("签名图片为空", "the signature image is empty"),
    "contract.signature_too_large": _m(
        "签名图片超过 {limit_bytes} 字节", "the signature image exceeds {limit_bytes} bytes"
    ),
    "contract.signature_type": _m(
        "签名图片必须是 PNG 或 JPEG", "the signature image must be a PNG or JPEG"
    ),
    "contract.signature_unreadable": _m(
        "签名图片无法解码", "the signature image cannot be decoded"
    ),
    "contract.render_failed": _m(
        "合同无法生成：{reason}", "the contract cannot be rendered: {reason}"
    ),
    "contract.file_too_large": _m(
        "合同文件最大 {limit_bytes} 字节", "a contract file is at most {limit_bytes} bytes"
    ),
    "contract.signing_not_configured": _m(
        "本服务器未配置合同签章", "contract signing is not configured on this server"
    ),
    "contract.font_missing": _m(
        "合同所需的中文字体缺失", "the CJK font the contract needs is missing"
    ),
    "contract.document_unavailable": _m(
        "已签署的合同文件暂不可用", "the signed contract file is unavailable"
    ),
    # -- kits, depots, stock -------------------------------------------------------------
    "kit.not_found": _m("套件 {kit_code} 不存在", "kit {kit_code} does not exist"),
    "kit.reservation_not_found": _m(
        "套件预留 {reservation_id} 不存在", "kit reservation {reservation_id} does not exist"
    ),
    "kit.already_reserved": _m(
        "工单 {order_id} 已有有效的套件预留",
        "work order {order_id} already has an active kit reservation",
    ),
    "kit.out_of_stock": _m(
        "仓库 {depot_code} 无法足量供应套件 {kit_code}",
        "depot {depot_code} cannot supply kit {kit_code} in full",
    ),
    "kit.not_reserved": _m(
        "套件预留 {reservation_id} 状态为 {status}，不是已预留",
        "kit reservation {reservation_id} is {status}, not reserved",
    ),
    "kit.not_issued": _m(
        "套件预留 {reservation_id} 状态为 {status}，不是已出库",
        "kit reservation {reservation_id} is {status}, not issued",
    ),
    "kit.cancel_refused": _m(
        "套件预留 {reservation_id} 状态为 {status}，不能取消",
        "kit reservation {reservation_id} is {status}; it cannot be cancelled",
    ),
    "kit.already_installed": _m(
        "工单 {order_id} 的套件预留 {reservation_id} 的电表已安装，请按实际消耗结算",
        "the meter of kit reservation {reservation_id} of work order {order_id} is installed; "
        "close the reservation with what was consumed",
    ),
    "kit.bill_invalid": _m(
        "方案 {scheme_id} 的材料清单无效：{reason}",
        "the bill of materials of scheme {scheme_id} is invalid: {reason}",
    ),
    "kit.stock_changed": _m(
        "仓库中 {material_code} 的库存已不足以满足预留 {reservation_id}",
        "depot stock of {material_code} no longer covers reservation {reservation_id}",
    ),
    "kit.returns_invalid": _m("退料数量无效：{reason}", "invalid returns: {reason}"),
    "material.not_found": _m(
        "物料 {material_code} 不存在", "material {material_code} does not exist"
    ),
    "material.unknown": _m(
        "未知物料编码：{material_codes}", "unknown material code(s): {material_codes}"
    ),
    "depot.not_found": _m("仓库 {depot_code} 不存在", "depot {depot_code} does not exist"),
    "depot.exists": _m("仓库 {depot_code} 已存在", "depot {depot_code} exists"),
    "stock.forbidden": _m("角色 {role} 无权管理仓库库存", "role {role} may not manage depot stock"),
    "stock.report_forbidden": _m(
        "角色 {role} 无权查看低库存报告", "role {role} may not read the low-stock report"
    ),
    "stock.quantity_not_positive": _m(
        "入库数量必须大于 0：{material_codes}", "quantities must be > 0: {material_codes}"
    ),
    "stock.reorder_level_negative": _m("补货点不能为负", "the reorder level must be ≥ 0"),
    "stock.row_not_found": _m("{material_code} 没有库存记录", "no stock row for {material_code}"),
    # -- checklists ----------------------------------------------------------------------
    "checklist.unknown_phase": _m(
        "未知检查阶段 {phase}（可选：{allowed}）", "unknown check phase {phase} (one of: {allowed})"
    ),
    "checklist.card_withdrawn": _m(
        "本工单使用的检查卡 {card_code} v{card_version} 已不在目录中",
        "card {card_code} v{card_version} used by this order is no longer in the catalogue",
    ),
    "checklist.no_accepted_scheme": _m(
        "工单 {order_id} 没有说明电表接线方式的已确认方案，无法选择检查卡",
        "work order {order_id} has no accepted scheme saying how the meter is connected",
    ),
    "checklist.no_card": _m(
        "{date} 没有适用于 {category} {phases} 相 {metering} 计量装置的检查卡",
        "no checklist card in force for a {category} {phases}-phase {metering}-metered "
        "installation on {date}",
    ),
    "checklist.already_passed": _m(
        "工单 {order_id} 的 {phase} 检查已通过",
        "the {phase} check of work order {order_id} has already passed",
    ),
    "checklist.wrong_stage": _m(
        "{phase} 检查应在工单处于 {required} 阶段时提交；工单 {order_id} 处于 {stage} 阶段",
        "the {phase} check is submitted when the order is {required}; work order {order_id} is "
        "{stage}",
    ),
    "checklist.evidence_missing": _m(
        "工单 {order_id} 的 {phase} 检查缺少证据，不能提交：{missing}",
        "the {phase} check of work order {order_id} cannot be submitted before its evidence "
        "exists; missing: {missing}",
    ),
    "checklist.evidence_pending": _m(
        "工单 {order_id} 的 {phase} 检查正在等待证据处理完成，请稍后重试",
        "the {phase} check of work order {order_id} waits for its evidence to be processed; "
        "retry shortly",
    ),
    "checklist.readings_invalid": _m(
        "有 {count} 项读数无效：{problems}", "{count} reading(s) are invalid: {problems}"
    ),
    # -- media, meters -------------------------------------------------------------------
    "media.not_found": _m("影像 {media_id} 不存在", "media item {media_id} does not exist"),
    "media.no_thumbnail": _m(
        "影像 {media_id} 暂无缩略图", "media item {media_id} has no thumbnail (yet)"
    ),
    "media.flags_forbidden": _m(
        "角色 {role} 无权审核影像标记", "role {role} may not review evidence flags"
    ),
    "media.client_id_used": _m(
        "客户端编号 {client_id} 已用于影像 {media_id}",
        "client id {client_id} was already used (item {media_id})",
    ),
    "media.sha256_mismatch": _m(
        "文件的 sha256 为 {sha256}，与声明的 {declared} 不符",
        "the file's sha256 is {sha256}, the client declared {declared}",
    ),
    "media.too_large_for_kind": _m(
        "{kind} 文件（{size_bytes} 字节）超过大小限制",
        "the {kind} file ({size_bytes} bytes) exceeds its size limit",
    ),
    "media.photo_required": _m("{kind} 必须是照片", "a {kind} item must be a photo"),
    "media.image_required": _m(
        "生成的 {kind} 必须是图片", "a generated {kind} item must be an image"
    ),
    "media.barcode_value_missing": _m(
        "条码照片需要终端扫描到的值", "a barcode photo needs the value the terminal scanned"
    ),
    "media.empty": _m("文件为空", "the file is empty"),
    "media.unsupported_type": _m(
        "不支持的文件类型：应为 JPEG、PNG、HEIC 照片或 MP4/MOV 视频",
        "unsupported file type: expected a JPEG, PNG or HEIC photo or an MP4/MOV video",
    ),
    "media.unsupported_brand": _m(
        "不支持的 ISO 媒体类型 {brand}", "unsupported ISO media brand {brand}"
    ),
    "media.heic_unsupported": _m("本服务器不支持 HEIC 照片", "HEIC photos are not supported here"),
    "media.not_a_photo": _m("{media_type} 不是照片", "{media_type} is not a photo"),
    "media.not_a_video": _m("{media_type} 不是视频", "{media_type} is not a video"),
    "media.jpeg_truncated": _m(
        "JPEG 文件不完整或已损坏", "the JPEG is truncated or corrupt (no end-of-image marker)"
    ),
    "media.image_empty": _m("图片没有像素", "the image has no pixels"),
    "media.image_unreadable": _m(
        "无法读取 {media_type} 图片", "the {media_type} image cannot be read"
    ),
    "media.image_corrupt": _m("图片不完整或已损坏", "the image is truncated or corrupt"),
    "media.decompression_bomb": _m(
        "图片像素过多，已拒绝", "the image has too many pixels and was refused"
    ),
    "media.video_no_moov": _m(
        "视频缺少 moov 信息（不完整或无法播放）",
        "the video has no 'moov' box (incomplete or not playable)",
    ),
    "media.video_no_mdat": _m("视频没有媒体数据", "the video has no media data ('mdat' box)"),
    "media.video_truncated": _m("视频不完整或格式错误", "the video is truncated or malformed"),
    "media.upload_too_large": _m(
        "上传文件最大 {limit_bytes} 字节", "the upload may be at most {limit_bytes} bytes"
    ),
    "media.upload_not_found": _m("上传不存在", "no such upload"),
    "media.upload_other_terminal": _m(
        "只有开始上传的终端可以继续上传", "only the terminal that started an upload may continue it"
    ),
    "media.upload_complete": _m("此上传已完成", "this upload is already complete"),
    "media.upload_interrupted": _m(
        "上传中断，请从 Upload-Offset 继续或重新上传",
        "the upload was interrupted; resume from Upload-Offset or upload again",
    ),
    "storage.unavailable": _m(
        "文件存储暂不可用（{reason}），请稍后重试",
        "the file store is unavailable ({reason}); try again later",
    ),
    "media.file_missing": _m(
        "存储的文件在影像目录中缺失", "the stored file is missing from the media folder"
    ),
    "media.tus_version": _m("需要 Tus-Resumable {version}", "Tus-Resumable {version} is required"),
    "media.tus_length_required": _m(
        "需要 Upload-Length（不支持延迟长度）",
        "Upload-Length is required (deferred length is not supported)",
    ),
    "media.tus_content_type": _m(
        "PATCH 需要 Content-Type application/offset+octet-stream",
        "PATCH needs Content-Type application/offset+octet-stream",
    ),
    "media.tus_offset_required": _m("需要 Upload-Offset", "Upload-Offset is required"),
    "media.tus_offset_mismatch": _m(
        "Upload-Offset {got} 与服务器的偏移 {offset} 不符",
        "Upload-Offset {got} does not match the server's offset {offset}",
    ),
    "media.tus_metadata_invalid": _m(
        "Upload-Metadata 中 {key} 的值不是 base64 UTF-8",
        "the Upload-Metadata value of {key} is not base64 UTF-8",
    ),
    "media.tus_patch_busy": _m(
        "此上传的另一个 PATCH 正在进行", "another PATCH of this upload is in progress"
    ),
    "media.tus_body_too_long": _m(
        "PATCH 内容超过声明的 Upload-Length",
        "the PATCH body is longer than the declared Upload-Length",
    ),
    "media.multipart_required": _m(
        "请以 multipart/form-data 发送文件（大文件请用 tus）",
        "send the file as multipart/form-data (or use tus for large files)",
    ),
    "media.multipart_boundary": _m(
        "multipart/form-data 缺少有效的分隔符", "multipart/form-data without a valid boundary"
    ),
    "media.multipart_malformed": _m("multipart 内容格式错误", "malformed multipart body"),
    "media.no_file": _m("上传中没有文件", "no file part in the upload"),
    "media.body_idle_timeout": _m(
        "上传数据长时间未到达，上传已中止",
        "no upload data arrived for too long; the upload was dropped",
    ),
    "media.one_file_only": _m("每次上传一个文件", "send one file per upload"),
    "media.too_many_fields": _m("表单字段最多 {max_fields} 个", "at most {max_fields} form fields"),
    "media.form_field_too_long": _m(
        "表单字段 {field} 超过 {limit_bytes} 字节",
        "form field {field} is longer than {limit_bytes} bytes",
    ),
    "meter.code_length": _m(
        "电表资产编码应为 {length} 位，实际 {got} 位",
        "a meter asset code has {length} digits, got {got} characters",
    ),
    "meter.code_not_digits": _m(
        "电表资产编码只能包含数字", "a meter asset code contains digits only"
    ),
    "meter.check_digit": _m(
        "电表资产编码未通过 {rule} 校验位检查", "the meter asset code fails the {rule} check digit"
    ),
    "meter.already_installed": _m(
        "电表 {meter_code} 已安装在工单 {order_id}",
        "meter {meter_code} is already installed on work order {order_id}",
    ),
    # -- inspections, repairs, ledger ----------------------------------------------------
    "inspection.not_a_batch_folder": _m(
        "该目录没有 {records_file}，不是批次输出目录",
        "the folder holds no {records_file}: not a batch output folder",
    ),
    "inspection.path_outside": _m(
        "{path} 不在巡检目录内，请指定其下的目录",
        "{path} is outside the inspections folder; give a folder under it",
    ),
    "inspection.records_invalid": _m(
        "巡检记录无效：{reason}", "invalid inspection records: {reason}"
    ),
    "inspection.batch_empty": _m("巡检记录文件为空", "the records file holds no records"),
    "inspection.export_target_not_empty": _m(
        "导出目录 {out_dir} 已存在且不为空：请导出到新目录",
        "{out_dir} exists and is not empty: export into a new folder",
    ),
    "inspection.export_card_missing": _m(
        "找不到模型 {model} 的模型卡；内置模型：{known}",
        "no model card for {model}; bundled models: {known}",
    ),
    "inspection.export_card_invalid": _m(
        "模型卡 {path} 没有可用的类别列表", "the model card {path} has no usable class list"
    ),
    "inspection.batch_mixed": _m(
        "一个文件中包含多个批次的记录", "records of several batches in one file"
    ),
    "inspection.batch_outdated": _m(
        "批次 {batch_id} 已从更新的运行导入",
        "batch {batch_id} was already imported from a newer run",
    ),
    "inspection.finding_not_found": _m(
        "缺陷 {finding_id} 不存在", "finding {finding_id} does not exist"
    ),
    "inspection.photo_not_found": _m(
        "巡检照片 {photo_id} 不存在", "photo {photo_id} does not exist"
    ),
    "inspection.file_not_stored": _m("没有存储的文件", "no stored file"),
    "inspection.file_missing": _m("存储的文件缺失", "the stored file is missing"),
    "inspection.review_refused": _m(
        "状态为 {status} 的缺陷不能被 {decision}", "a {status} finding cannot be {decision}"
    ),
    "inspection.correction_empty": _m(
        "修正需要改变类别、严重程度或框选范围",
        "a correction changes the class, the severity or the box",
    ),
    "inspection.correction_only": _m(
        "只有修正可以改变类别、严重程度或框选范围",
        "only a correction changes class, severity or box",
    ),
    "inspection.box_invalid": _m(
        "框选范围必须满足 x1 < x2 且 y1 < y2", "box must have x1 < x2 and y1 < y2"
    ),
    "repair.not_found": _m("抢修单 {repair_id} 不存在", "repair order {repair_id} does not exist"),
    "repair.other_crew": _m(
        "抢修单 {repair_id} 属于其他班组", "repair order {repair_id} belongs to another crew"
    ),
    "repair.photo_kind_invalid": _m("照片类型应为 {allowed}", "kind must be one of {allowed}"),
    "repair.photo_type": _m("抢修照片必须是 JPEG 或 PNG", "a repair photo must be a JPEG or PNG"),
    "repair.photo_too_large": _m(
        "抢修照片最大 {limit_bytes} 字节", "a repair photo is at most {limit_bytes} bytes"
    ),
    "repair.photo_missing": _m("缺少照片证据：{missing}", "photo evidence missing: {missing}"),
    "repair.transition_refused": _m(
        "抢修单 {repair_id} 不能从 {stage} 转到 {target}",
        "repair order {repair_id} cannot move from {stage} to {target}",
    ),
    "repair.verify_forbidden": _m(
        "抢修由巡检员验收（角色：{role}）", "an inspector verifies a repair (role {role})"
    ),
    "repair.progress_forbidden": _m(
        "抢修进度由抢修班组上报（角色：{role}）",
        "the repair crew reports its own progress (role {role})",
    ),
    "repair.photos_locked": _m(
        "抢修单 {repair_id} 已验收或已取消（{stage}），照片不可再更改",
        "repair order {repair_id} is {stage}: its photos can no longer change",
    ),
    "repair.already_started": _m(
        "抢修单 {repair_id} 已开始（{stage}），不能再改派或更改杆塔",
        "repair order {repair_id} has started ({stage}): its crew and pole stay",
    ),
    "repair.not_located": _m(
        "抢修单 {repair_id} 没有杆塔也没有坐标，请先选定杆塔再派工",
        "repair order {repair_id} has no pole and no coordinates: pick its pole first",
    ),
    "repair.crew_not_found": _m("班组 {crew_id} 不存在", "crew {crew_id} does not exist"),
    "repair.crew_not_repair": _m("班组 {crew} 不承担抢修", "crew {crew} does not handle repairs"),
    "repair.crew_other_district": _m(
        "班组 {crew} 属于其他供电所", "crew {crew} works in another district"
    ),
    "repair.district_not_found": _m(
        "供电所 {district_id} 不存在", "district {district_id} does not exist"
    ),
    "repair.dispatch_not_found": _m(
        "线路 {line_id} 没有派工规则", "no dispatch rule for line {line_id}"
    ),
    "inspection.finding_stale": _m(
        "发现 {finding_id} 在显示后已变更（显示版本 {shown}，当前 {version}），请刷新后再决定",
        "finding {finding_id} changed since it was shown (version {shown}, now {version}); "
        "reload it and decide again",
    ),
    "inspection.finding_mismatch": _m(
        "决定针对发现 {named}，却发送给了 {finding_id}：请刷新后再决定",
        "the decision names finding {named} but was sent for {finding_id}; reload and decide again",
    ),
    "inspection.undo_refused": _m(
        "发现 {finding_id} 不能撤销（状态 {status}，抢修单 {stage}）：抢修班组开工后不可撤销",
        "finding {finding_id} cannot be undone (status {status}, repair order {stage}): "
        "once a crew has started the repair it stands",
    ),
    "ledger.task_not_found": _m(
        "台账任务 {task_id} 不存在", "ledger task {task_id} does not exist"
    ),
    "ledger.task_decided": _m(
        "台账任务 {task_id} 已处理（{status}）", "ledger task {task_id} is already {status}"
    ),
    "ledger.asset_not_found": _m(
        "台账资产 {asset_id} 不存在", "ledger asset {asset_id} does not exist"
    ),
    "ledger.no_observed_position": _m(
        "台账任务 {task_id} 没有观测位置", "ledger task {task_id} has no observed position"
    ),
    # -- call-backs, tracking, webhooks, web ---------------------------------------------
    "callback.forbidden": _m("角色 {role} 无权访问回访", "role {role} has no access to call-backs"),
    "callback.flags_forbidden": _m(
        "角色 {role} 无权访问回访标记", "role {role} has no access to review flags"
    ),
    "callback.not_due": _m(
        "工单 {order_id} 尚无回访（未送电）",
        "work order {order_id} has no call-back (not energised yet)",
    ),
    "callback.already_recorded": _m(
        "工单 {order_id} 的回访已记录",
        "the call-back of work order {order_id} was already recorded",
    ),
    "callback.flag_not_found": _m(
        "回访标记 {flag_id} 不存在", "review flag {flag_id} does not exist"
    ),
    "callback.flag_already_resolved": _m(
        "回访标记 {flag_id} 已处理", "review flag {flag_id} is already resolved"
    ),
    "callback.follow_up_open": _m(
        "工单 {order_id} 有未处理的回访跟进（{kinds}），处理后才能关闭",
        "work order {order_id} has open follow-ups ({kinds}); resolve them before closing",
    ),
    "callback.settings_invalid": _m(
        "回访配置 {path} 无效", "call-back settings {path} are invalid"
    ),
    "callback.settings_unreadable": _m(
        "无法读取回访配置 {path}", "cannot read call-back settings {path}"
    ),
    "tracking.unknown_token": _m("查询链接无效", "unknown tracking link"),
    "tracking.link_expired": _m("查询链接已过期", "this tracking link has expired"),
    "webhook.url_invalid": _m("推送地址无效：{reason}", "invalid webhook URL: {reason}"),
    "webhook.no_events": _m("至少订阅一个事件", "subscribe to at least one event"),
    "webhook.not_found": _m(
        "推送订阅 {subscription_id} 不存在", "webhook subscription {subscription_id} does not exist"
    ),
    "webhook.already_inactive": _m(
        "推送订阅 {subscription_id} 已停用",
        "webhook subscription {subscription_id} is already inactive",
    ),
    "webhook.inactive": _m(
        "推送订阅 {subscription_id} 已停用", "webhook subscription {subscription_id} is inactive"
    ),
    "webhook.delivery_not_found": _m(
        "推送记录 {delivery_id} 不存在", "webhook delivery {delivery_id} does not exist"
    ),
    "webhook.delivery_not_dead": _m(
        "推送记录 {delivery_id} 的状态为 {status}，只能重发已失败的推送",
        "webhook delivery {delivery_id} is {status}: only a dead letter can be re-sent",
    ),
    "web.static_not_found": _m("静态文件 {path} 不存在", "no static file {path}"),
}


def placeholders(template: str) -> set[str]:
    """The ``{name}`` fields a template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def render(code: str, params: dict[str, Any], language: str = DEFAULT_LANGUAGE) -> str:
    """The message of ``code`` in ``language`` (zh-CN when unknown); the code itself if unlisted.

    A list parameter is joined (、 in Chinese, commas in English); a stage or role is named for
    people; a message of :mod:`field_api.messages` (or a list
    of them) is rendered in the same language; a missing one is left as ``{name}``.
    """
    templates = MESSAGES.get(code)
    if templates is None:
        return code
    lang = language if language in templates else DEFAULT_LANGUAGE
    template = templates[lang]
    values = {k: _param(_named(k, v, lang), lang) for k, v in params.items()}

    class _Keep(dict[str, Any]):
        def __missing__(self, key: str) -> str:
            return "{" + key + "}"

    return template.format_map(_Keep(values))


# Parameters whose values are names of the flow: rendered by their names for people (a stage
# "energised" reads 已送电 / Energised, a role "crew" 现场班组 / crew), not as raw values.
_STAGE_PARAMS: Final = frozenset({"stage", "target", "from_stage", "to_stage", "current"})
_ROLE_PARAMS: Final = frozenset({"role"})
_CHECK_PARAMS: Final = frozenset({"failing"})  # a readiness check: database, storage
_NAMED_LISTS: Final = frozenset({"allowed", "needs", "roles", "stages"})


def _named(key: str, value: Any, language: str) -> Any:
    """A stage, role or readiness check as its name in ``language``; other values unchanged."""
    lang = i18n.normalise(language)

    def one(item: Any, prefixes: tuple[str, ...]) -> Any:
        if not isinstance(item, str):
            return item
        for prefix in prefixes:
            name = i18n.name(prefix, item, lang)
            if name != item:
                return name
        return item

    if key in _STAGE_PARAMS:
        return one(value, ("stage",))
    if key in _ROLE_PARAMS:
        return one(value, ("role",))
    if key in _CHECK_PARAMS:
        return one(value, ("check",))
    if key in _NAMED_LISTS and isinstance(value, list | tuple):
        return [one(v, ("stage", "role")) for v in value]
    return value


def _param(value: Any, language: str) -> Any:
    """A message (or list of them) rendered, a list joined, in ``language`` (、 in Chinese)."""
    return messages.param_text(value, language)


# What went wrong with a request field, by the start of pydantic's error type.
_FIELD_PROBLEMS: Final[tuple[tuple[str, dict[str, str]], ...]] = (
    ("missing", _m("缺少", "missing")),
    ("extra_forbidden", _m("不允许的字段", "not allowed")),
    ("string_too_long", _m("太长", "too long")),
    ("too_long", _m("太长", "too long")),
    ("string_too_short", _m("太短", "too short")),
    ("too_short", _m("太短", "too short")),
    ("greater_than", _m("超出范围", "out of range")),
    ("less_than", _m("超出范围", "out of range")),
    ("enum", _m("不是允许的值", "not an allowed value")),
    ("literal_error", _m("不是允许的值", "not an allowed value")),
    ("string_pattern_mismatch", _m("格式不对", "wrong format")),
    ("datetime", _m("不是有效的时间", "not a valid time")),
    ("date", _m("不是有效的日期", "not a valid date")),
    ("int", _m("应为整数", "not a whole number")),
    ("float", _m("应为数字", "not a number")),
    ("bool", _m("应为是或否", "not true or false")),
)
_FIELD_INVALID: Final = _m("无效", "invalid")
_REQUEST_BODY: Final = _m("请求内容", "the request body")
_LOCATIONS: Final = frozenset({"body", "query", "path", "header", "cookie"})
_MAX_FIELDS_NAMED: Final = 10


def field_errors_sentence(errors: Iterable[Mapping[str, Any]], language: str) -> str:
    """The ``detail`` of ``request.invalid``: one readable sentence naming each invalid field.

    ``errors`` are the ``params.errors`` entries (``loc``, ``type``, ``msg``).
    """
    lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
    named: list[str] = []
    listed = list(errors)
    for error in listed[:_MAX_FIELDS_NAMED]:
        loc = [str(x) for x in error.get("loc", ())]
        path = loc[1:] if loc and loc[0] in _LOCATIONS and len(loc) > 1 else loc
        field = ".".join(path) or _REQUEST_BODY[lang]
        kind = str(error.get("type", ""))
        problem = next((p for prefix, p in _FIELD_PROBLEMS if kind.startswith(prefix)), None)
        text = (problem or _FIELD_INVALID)[lang]
        named.append(f"{field}（{text}）" if lang == "zh-CN" else f"{field} ({text})")
    more = len(listed) - len(named)
    head = render("request.invalid", {}, lang)
    if lang == "zh-CN":
        tail = f"等 {len(listed)} 项" if more > 0 else ""
        return f"{head}：{'、'.join(named)}{tail}" if named else head
    tail = f" and {more} more" if more > 0 else ""
    return f"{head}: {', '.join(named)}{tail}" if named else head
