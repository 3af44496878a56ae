"""The load generator of benches/bench_load.py, run in its own process (its CPU is measured
apart from the servers'): simulated crews running the one-visit flow, planners reading reports,
and a closed-loop saturation client.

    python benches/load_client.py flows SPEC.json OUT.json
    python benches/load_client.py saturate SPEC.json OUT.json

SPEC (written by bench_load.py) names the server, the tokens, the crews with their orders and
sites, the SMS gateway, the think time, the upload rate and the duration. OUT receives every
request's (family, status, seconds) and what the clients saw succeed (media items, contracts,
checklists, completed orders, created orders), which bench_load.py checks against the database.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image, ImageDraw

PHOTO_KINDS = ("site", "meter_box", "wiring", "seal", "meter_before", "meter_after")
BOUNDARY = "benchloadboundary5c1e"
CHUNK = 64 * 1024
_ID = re.compile(r"/\d+(?=/|$)")


def family(method: str, path: str) -> str:
    """The endpoint family of a request: ids replaced by {id}, the query dropped."""
    return f"{method} {_ID.sub('/{id}', path.split('?')[0])}"


# -- evidence a phone would send ----------------------------------------------------------------


class Camera:
    """Distinct ~2 MB JPEGs with the site's GPS and the capture time in EXIF.

    A fixed sensor-noise layer (so the JPEG does not compress to nothing) under random 250 px
    tiles drawn per photo (so every photo's perceptual hash differs: the server's reused-photo
    check sees distinct photos). About 35 ms of CPU each, drawn when the crew takes it."""

    def __init__(self, seed: int, width: int = 2000, height: int = 1500) -> None:
        self.rng = np.random.default_rng(seed)
        self.noise = self.rng.integers(0, 90, (height, width, 3), dtype=np.uint8)
        self.shape = (height // 250, width // 250, 3)

    def photo(self, lat: float, lon: float) -> bytes:
        grid = self.rng.integers(0, 166, self.shape, dtype=np.uint8)
        pixels = grid.repeat(250, axis=0).repeat(250, axis=1) + self.noise
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, "JPEG", quality=94, exif=_exif(lat, lon))
        return out.getvalue()


def _dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
    degrees = int(value)
    minutes_f = (value - degrees) * 60
    minutes = int(minutes_f)
    return Fraction(degrees), Fraction(minutes), Fraction(round((minutes_f - minutes) * 600000),
                                                          10000)


def _exif(lat: float, lon: float) -> Image.Exif:
    exif = Image.Exif()
    now = datetime.now(UTC)  # the phone's clock: a real capture time, not the server's
    exif.get_ifd(0x8769).update({0x9003: now.strftime("%Y:%m:%d %H:%M:%S"), 0x9011: "+00:00"})
    exif.get_ifd(0x8825).update({1: "N", 2: _dms(lat), 3: "E", 4: _dms(lon)})
    return exif


def barcode_photo(meter: str, lat: float, lon: float) -> bytes:
    """The meter's Code 128 label (zxing-cpp, as docs/walkthrough/make_photos.py draws it)."""
    import zxingcpp

    code = zxingcpp.create_barcode(meter, zxingcpp.BarcodeFormat.Code128)
    label = Image.fromarray(np.asarray(code.to_image(scale=3, add_quiet_zones=True)))
    out = io.BytesIO()
    label.convert("RGB").save(out, "JPEG", quality=90, exif=_exif(lat, lon))
    return out.getvalue()


def signature_png() -> bytes:
    image = Image.new("RGBA", (300, 100), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(10, 80), (120, 15), (290, 90)], fill=(0, 0, 0, 255), width=4)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def multipart_parts(fields: dict[str, str], data: bytes, name: str) -> tuple[bytes, bytes, bytes]:
    head = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ) + (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head, data, f"\r\n--{BOUNDARY}--\r\n".encode()


async def paced(parts: tuple[bytes, ...], bytes_per_s: float) -> AsyncIterator[bytes]:
    """The body in 64 KiB chunks, no faster than ``bytes_per_s`` (a field connection)."""
    body = b"".join(parts)
    start = time.monotonic()
    for offset in range(0, len(body), CHUNK):
        chunk = body[offset : offset + CHUNK]
        due = start + (offset + len(chunk)) / bytes_per_s
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield chunk


# -- what the clients saw ----------------------------------------------------------------------


@dataclass
class Seen:
    samples: list[tuple[str, str, float]] = field(default_factory=list)  # family, status, s
    media: list[tuple[int, str, int]] = field(default_factory=list)  # order, client id, id
    contracts: list[int] = field(default_factory=list)  # orders whose signature was 2xx
    checklists: list[tuple[int, str, int]] = field(default_factory=list)  # order, phase, id
    visits: list[tuple[int, int]] = field(default_factory=list)  # order, visit id
    kits: list[tuple[int, int]] = field(default_factory=list)  # order, reservation id
    completed: list[int] = field(default_factory=list)
    created_orders: list[tuple[int, str]] = field(default_factory=list)  # id, id number
    flows_started: int = 0
    flows_aborted: int = 0  # stopped by an error, or by the end of the grace period
    orders_exhausted: int = 0
    code_waits: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class FlowError(Exception):
    """A request of the flow failed: the flow stops (the error is already counted)."""


class Deadline(Exception):
    """The bench's time is up: the flow stops between steps."""


@dataclass
class Ctx:
    spec: dict[str, Any]
    client: httpx.AsyncClient
    seen: Seen
    deadline: float  # no flow starts after it
    rng: random.Random
    hard_deadline: float = 0.0  # flows begun before the deadline finish until this one
    crews_done: asyncio.Event = field(default_factory=asyncio.Event)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.spec['tokens'][who]}"}

    async def think(self) -> None:
        if time.monotonic() >= self.hard_deadline:
            raise Deadline
        base = float(self.spec["think_s"])
        await asyncio.sleep(base * self.rng.uniform(0.5, 1.5))
        if time.monotonic() >= self.hard_deadline:
            raise Deadline

    async def call(self, who: str, method: str, path: str, *,
                   headers_extra: dict[str, str] | None = None, **kw: Any) -> Any:
        """One request; a status >= 400 or a transport error is counted and stops the flow."""
        fam = family(method, path)
        headers = self.headers(who) | (headers_extra or {})
        t0 = time.perf_counter()
        try:
            response = await self.client.request(method, path, headers=headers, **kw)
            status = str(response.status_code)
        except httpx.HTTPError as exc:
            self.seen.samples.append((fam, type(exc).__name__, time.perf_counter() - t0))
            raise FlowError(f"{fam}: {exc!r}") from exc
        self.seen.samples.append((fam, status, time.perf_counter() - t0))
        if response.status_code >= 400:
            raise FlowError(f"{fam}: {status} {response.text[:300]}")
        return response.json() if response.content else None


# -- the one-visit flow -------------------------------------------------------------------------


async def upload(ctx: Ctx, crew: dict[str, Any], order_id: int, kind: str, data: bytes,
                 scanned: str | None = None) -> int:
    """One photo as the crew app sends it (multipart), paced to the field connection."""
    client_id = str(uuid.uuid4())
    fields = {"client_id": client_id, "kind": kind}
    if scanned is not None:
        fields["scanned_value"] = scanned
    parts = multipart_parts(fields, data, f"{kind}.jpg")
    rate = float(ctx.spec["upload_mbps"]) * 1_000_000
    body = await ctx.call(
        crew["who"], "POST", f"/work-orders/{order_id}/media",
        content=paced(parts, rate),
        headers_extra={"content-type": f"multipart/form-data; boundary={BOUNDARY}",
                       "content-length": str(sum(len(p) for p in parts))},
    )  # fmt: skip
    ctx.seen.media.append((order_id, client_id, int(body["id"])))
    return int(body["id"])


async def take_photo(ctx: Ctx, camera: Camera, crew: dict[str, Any]) -> bytes:
    return await asyncio.to_thread(camera.photo, crew["lat"], crew["lon"])


async def read_code(ctx: Ctx, phone: str, contract_no: str) -> str:
    """The one-time code, as the customer's phone receives it: the API queues the message (a
    job of the sms queue), the job worker sends it to the gateway (field_api/sms's fake, on
    loopback), and the crew reads it there by phone and contract number; polled, bounded."""
    t0 = time.monotonic()
    url = f"{ctx.spec['sms_gateway']}/messages"
    while time.monotonic() - t0 < 120:
        r = await ctx.client.get(url)
        for message in reversed(r.json()):
            params = message.get("params") or {}
            if message.get("phone", "").endswith(phone) and params.get("contract_no") == \
                    contract_no and params.get("code"):
                ctx.seen.code_waits.append(time.monotonic() - t0)
                return str(params["code"])
        await asyncio.sleep(0.5)  # the job worker sends it a moment after the request
    raise FlowError(f"no SMS with a code for {contract_no} within 120 s")


async def arrive_and_survey(ctx: Ctx, camera: Camera, crew: dict[str, Any],
                            order_id: int) -> int:
    who, site = crew["who"], {"lat": crew["lat"], "lon": crew["lon"]}
    await ctx.call(who, "GET", f"/work-orders/{order_id}")
    await ctx.think()
    visit = await ctx.call(who, "POST", f"/work-orders/{order_id}/visits/arrival",
                           json=site | {"accuracy_m": 5})
    visit_id = int(visit["id"])
    ctx.seen.visits.append((order_id, visit_id))
    await ctx.think()
    await upload(ctx, crew, order_id, "site", await take_photo(ctx, camera, crew))
    await ctx.think()
    await complete(ctx, crew, order_id, visit_id)
    return visit_id


async def complete(ctx: Ctx, crew: dict[str, Any], order_id: int, visit_id: int) -> Any:
    return await ctx.call(crew["who"], "POST",
                          f"/work-orders/{order_id}/visits/{visit_id}/complete",
                          json={"lat": crew["lat"], "lon": crew["lon"]})


async def scheme_and_contract(ctx: Ctx, crew: dict[str, Any], order: dict[str, Any],
                              visit_id: int) -> dict[str, Any]:
    who, order_id = crew["who"], order["id"]
    scheme = await ctx.call(who, "POST", f"/work-orders/{order_id}/schemes", json={})
    if scheme["status"] != "accepted":
        raise FlowError(f"scheme not accepted: {scheme['failures']}")
    await ctx.think()
    await complete(ctx, crew, order_id, visit_id)
    await ctx.think()
    contract = await ctx.call(who, "POST", f"/work-orders/{order_id}/contract")
    await ctx.think()
    await ctx.call(who, "POST", f"/work-orders/{order_id}/contract/otp")
    code = await read_code(ctx, order["phone"], contract["contract_no"])
    await ctx.think()
    form = {"code": code, "lat": str(crew["lat"]), "lon": str(crew["lon"])}
    await ctx.call(who, "POST", f"/work-orders/{order_id}/contract/signature", data=form,
                   files={"signature": ("signature.png", ctx.spec["_signature"], "image/png")})
    ctx.seen.contracts.append(order_id)
    return dict(scheme["scheme"])


async def issue_kit(ctx: Ctx, order_id: int, meter: str) -> None:
    """The storekeeper reserves the scheme's kit in the depot and issues it with the meter."""
    kit = await ctx.call("storekeeper", "POST", f"/work-orders/{order_id}/kit-reservations",
                         json={"depot_code": ctx.spec["depot"]})
    ctx.seen.kits.append((order_id, int(kit["id"])))
    await ctx.call("storekeeper", "POST", f"/kit-reservations/{kit['id']}/issue",
                   json={"meter_barcode": meter})


async def install(ctx: Ctx, camera: Camera, crew: dict[str, Any], order_id: int,
                  meter: str) -> None:
    for kind in PHOTO_KINDS[1:5]:
        await upload(ctx, crew, order_id, kind, await take_photo(ctx, camera, crew))
        await ctx.think()
    label = barcode_photo(meter, crew["lat"], crew["lon"])
    media_id = await upload(ctx, crew, order_id, "barcode", label, scanned=meter)
    for _ in range(120):  # the job worker decodes the label just after the upload
        await asyncio.sleep(1.0)
        item = await ctx.call(crew["who"], "GET", f"/media/{media_id}")
        if item["analysis"] != "pending":
            if item.get("decoded_value") != meter:
                raise FlowError(f"barcode decoded as {item.get('decoded_value')!r}")
            return
    raise FlowError("the barcode photo was not analysed within 120 s")


async def check(ctx: Ctx, crew: dict[str, Any], order_id: int, phase: str,
                values: dict[str, Any]) -> None:
    body = await ctx.call(crew["who"], "POST", f"/work-orders/{order_id}/checklists/{phase}",
                          json={"values": values})
    ctx.seen.checklists.append((order_id, phase, int(body["id"])))
    if not body["passed"]:
        raise FlowError(f"check {phase} failed: {body.get('failed_items')}")


async def one_visit(ctx: Ctx, camera: Camera, crew: dict[str, Any],
                    order: dict[str, Any]) -> None:
    """Arrival to energised: every step of the README's walk-through, with think time."""
    order_id = order["id"]
    meter = f"11001090{order_id:014d}"
    visit_id = await arrive_and_survey(ctx, camera, crew, order_id)
    await ctx.think()
    scheme = await scheme_and_contract(ctx, crew, order, visit_id)
    await ctx.think()
    await issue_kit(ctx, order_id, meter)
    await ctx.think()
    await install(ctx, camera, crew, order_id, meter)
    await complete(ctx, crew, order_id, visit_id)
    await ctx.think()
    await check(ctx, crew, order_id, "before_energising", {
        "insulation_resistance": 15.0, "earthing_resistance": 3.1, "meter_height": 1.6,
        "wiring_correct": True, "cable_section": scheme["cable"]["section_mm2"],
        "breaker_rating": scheme["breaker_rating_a"], "seal_numbers": "SG20260001, SG20260002",
    })  # fmt: skip
    await complete(ctx, crew, order_id, visit_id)
    await ctx.think()
    await upload(ctx, crew, order_id, "meter_after", await take_photo(ctx, camera, crew))
    await ctx.think()
    await check(ctx, crew, order_id, "supply_on",
                {"terminal_voltage": 226.5, "rcd_trip_time": 25, "meter_registering": True})
    done = await complete(ctx, crew, order_id, visit_id)
    if not done.get("complete"):
        raise FlowError(f"not complete: {done.get('stopped_at')} {done.get('missing')}")
    ctx.seen.completed.append(order_id)


async def crew_loop(ctx: Ctx, crew: dict[str, Any], n: int) -> None:
    camera = Camera(seed=1000 + n)
    await asyncio.sleep(ctx.rng.uniform(0, float(ctx.spec["think_s"]) * 2))  # staggered start
    for order in crew["orders"]:
        if time.monotonic() >= ctx.deadline:
            return
        ctx.seen.flows_started += 1
        try:
            await one_visit(ctx, camera, crew, order)
        except (FlowError, Deadline) as exc:
            ctx.seen.flows_aborted += 1
            if isinstance(exc, FlowError):
                print(f"crew {n}: flow stopped: {str(exc)[:300]}", file=sys.stderr)
                try:
                    await ctx.think()  # a crew whose step failed goes on with its next order
                except Deadline:
                    return
    else:
        ctx.seen.orders_exhausted += time.monotonic() < ctx.deadline


REPORTS = (
    "/planner/one-visit", "/planner/first-pass", "/planner/failing-items", "/planner/trend",
    "/work-orders?limit=20",
)


async def planner_loop(ctx: Ctx) -> None:
    """A planner reading reports and the order list, with think time."""
    today = datetime.now(UTC).date()
    window = {"from": str(today.replace(day=1)), "to": str(today)}
    await asyncio.sleep(ctx.rng.uniform(0, float(ctx.spec["think_s"])))
    while not ctx.crews_done.is_set():  # planners read while crews work
        path = ctx.rng.choice(REPORTS)
        params = {} if "?" in path else window
        try:
            await ctx.call("planner", "GET", path, params=params)
            await ctx.think()
        except FlowError as exc:
            print(f"planner: {str(exc)[:300]}", file=sys.stderr)
            await asyncio.sleep(float(ctx.spec["think_s"]))
        except Deadline:
            return


async def run_flows(spec: dict[str, Any]) -> Seen:
    """Crews start flows for ``seconds``; a flow begun in time may finish during ``grace_s``
    more; planners read reports until the crews are done."""
    seen = Seen()
    spec["_signature"] = signature_png()
    limits = httpx.Limits(max_connections=len(spec["crews"]) + spec["planners"] + 10)
    timeout = httpx.Timeout(120.0, connect=30.0)
    async with httpx.AsyncClient(base_url=spec["base"], limits=limits, timeout=timeout) as client:
        start = time.monotonic()
        ctx = Ctx(spec, client, seen, start + float(spec["seconds"]),
                  random.Random(spec.get("seed", 7)),
                  start + float(spec["seconds"]) + float(spec["grace_s"]))
        planners = [asyncio.create_task(planner_loop(ctx)) for _ in range(spec["planners"])]
        await asyncio.gather(*(crew_loop(ctx, crew, n) for n, crew in enumerate(spec["crews"])))
        ctx.crews_done.set()
        await asyncio.gather(*planners)
    return seen


# -- closed loop: no think time, no uploads -------------------------------------------------------


class RawConnection:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams: far cheaper per request than
    httpx, so on a machine the servers share with it the client takes less of the CPU. Used
    the same way for the bare endpoint and for the product."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif lname == b"connection" and b"close" in value.lower():
                close = True
        data = await (self._chunked() if chunked else self.reader.readexactly(length))
        if close:
            self.close()
        return status, data

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        out = b""
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            out += await self.reader.readexactly(size + 2)
            if size == 0:
                return out

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def mix_request(spec: dict[str, Any], n: int) -> tuple[str, str, str, bytes]:
    """The product's read/write mix: (who, method, path, JSON body). Bare: GET /ping."""
    if spec.get("bare"):
        return "none", "GET", "/ping", b""
    order_id, crew = spec["read_orders"][n % len(spec["read_orders"])]  # a crew reads its own
    slot = n % 10
    if slot < 4:
        return crew, "GET", f"/work-orders/{order_id}", b""
    if slot < 6:
        return "planner", "GET", "/work-orders?limit=20", b""
    if slot == 6:
        return "planner", "GET", f"/planner/one-visit?from={spec['from']}&to={spec['to']}", b""
    if slot == 7:
        return crew, "GET", f"/work-orders/{order_id}/media", b""
    body = dict(spec["order_template"])
    body["customer_id_number"] = f"SAT{spec['tag']}{n:010d}"
    body["customer_phone"] = f"137{n % 100_000_000:08d}"
    return "service", "POST", "/work-orders", json.dumps(body).encode()


async def saturate(spec: dict[str, Any]) -> Seen:
    """``connections`` closed loops (each sends its next request when the last answered)."""
    seen = Seen()
    url = httpx.URL(spec["base"])
    counter = iter(range(10**9))
    deadline = time.monotonic() + float(spec["seconds"])

    async def loop() -> None:
        conn = RawConnection(url.host, int(url.port or 80))
        while time.monotonic() < deadline:
            n = next(counter)
            who, method, path, body = mix_request(spec, n)
            headers = {"Authorization": f"Bearer {spec['tokens'][who]}"} if who != "none" else {}
            if body:
                headers["Content-Type"] = "application/json"
            t0 = time.perf_counter()
            try:
                status, data = await conn.request(method, path, headers, body)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                seen.samples.append((family(method, path), type(exc).__name__,
                                     time.perf_counter() - t0))
                conn.close()
                continue
            seen.samples.append((family(method, path), str(status), time.perf_counter() - t0))
            if method == "POST" and status == 201:
                seen.created_orders.append((int(json.loads(data)["id"]),
                                            json.loads(body)["customer_id_number"]))
        conn.close()

    await asyncio.gather(*(loop() for _ in range(int(spec["connections"]))))
    return seen


def main() -> None:
    mode, spec_path, out_path = sys.argv[1:4]
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    t0 = time.monotonic()
    seen = asyncio.run(run_flows(spec) if mode == "flows" else saturate(spec))
    result = seen.as_dict() | {"wall_s": time.monotonic() - t0}
    Path(out_path).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
