"""Pure rules of customer SMS: the local templates and Alibaba Cloud's RPC signature."""

from __future__ import annotations

from field_api.sms.rules import (
    SmsTemplate,
    canonical_query,
    percent_encode,
    render,
    rpc_signature,
    signature_matches,
    string_to_sign,
)

# The worked example of Alibaba Cloud's "signature method V2 for RPC APIs" (DescribeRegions,
# AccessKey secret "testsecret"): the string to sign and the signature it documents.
DOC_PARAMS = {
    "Timestamp": "2016-02-23T12:46:24Z",
    "Format": "XML",
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "Version": "2014-05-26",
    "SignatureVersion": "1.0",
}
DOC_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
    "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
    "%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
)


def test_the_documented_example_signs_as_documented() -> None:
    assert string_to_sign("GET", DOC_PARAMS) == DOC_STRING_TO_SIGN
    assert rpc_signature("testsecret", "GET", DOC_PARAMS) == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_percent_encoding_is_rfc3986() -> None:
    assert percent_encode("a b*~") == "a%20b%2A~"
    assert percent_encode("验") == "%E9%AA%8C"
    assert canonical_query({"b": "2", "a": "1", "Signature": "x"}) == "a=1&b=2"


def test_a_changed_parameter_or_secret_breaks_the_signature() -> None:
    signed = DOC_PARAMS | {"Signature": rpc_signature("testsecret", "POST", DOC_PARAMS)}
    assert signature_matches("testsecret", "POST", signed)
    assert not signature_matches("othersecret", "POST", signed)
    assert not signature_matches("testsecret", "GET", signed)
    assert not signature_matches("testsecret", "POST", signed | {"AccessKeyId": "other"})


def test_each_kind_renders_its_zh_cn_text_with_the_sender() -> None:
    otp = render(
        SmsTemplate.otp,
        {"contract_no": "HT-1", "code": "123456", "minutes": "5"},
        sender="【供电】",
    )
    assert otp == "【供电】您的供用电合同（HT-1）签署验证码：123456，5分钟内有效。请勿告知他人；如非本人办理请忽略。"
    link = render(
        SmsTemplate.progress, {"order_id": "7", "stage": "已送电", "link": "https://x/t/a"}, sender=""
    )
    assert link == "您的用电申请（工单7）进度：已送电。查看进度：https://x/t/a"
    visit = render(
        SmsTemplate.visit,
        {"order_id": "7", "start": "2026-12-05 09:00", "end": "11:00"},
        sender="",
    )
    assert visit == "您的用电申请（工单7）已预约上门：2026-12-05 09:00–11:00。"
