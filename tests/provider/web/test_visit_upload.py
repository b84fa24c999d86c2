"""A visit without appointment pushed to the server by the real technician's tool: `lci-sim
serve` runs the handset, `lci-tool service --upload URL` does the visit and uploads its receipt
and verified log, signed with the center's delegated key, to the live Django server, which
checks the key, the signature, the URL, the signing time and the log's chain again and files
the visit with the client whose handset it is. A tampered log, a wrong key, a replayed upload
each get one clear error and store nothing; the same upload again is the same visit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware import eventlog
from host_tools import exitcodes, keys
from host_tools.visit_upload import UploadError, send, signed_request, upload
from provider.web.centers.models import Center
from provider.web.service.models import Visit
from sim.provider import Provider

ROOT = Path(__file__).resolve().parents[3]
SERIAL = "LCI7-0042"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fleet(tmp_path):
    """The provider's keys, the center's delegated key and a handset served by lci-sim."""
    folder = tmp_path / "keys"
    Provider(5, SERIAL).save(folder)
    center_key = tmp_path / "center.key"
    keys.delegate_to_file(folder / keys.ROOT_KEY_FILE, center_key, "center-0042", ["calibrate"],
                          days=30)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "serve", "--no-pty", "--tcp", "0", "--keys",
         str(folder), "--serial", SERIAL, "--installed", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    line = proc.stdout.readline()
    assert line.startswith("tcp: "), proc.stderr.read()
    yield {"keys": folder, "center_key": center_key, "port": line.split()[1],
           "signer": keys.load_delegated_key(center_key)}
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def center(fleet):
    signer = fleet["signer"]
    return Center.objects.create(
        name="Lake Street Interlock", code="mpls-1", street="1 Lake St", city="Minneapolis",
        state="MN", postal_code="55408", email="shop@lakestreet.example", bays=2,
        key_id=signer.key_id, key_public=signer.public_key.hex(), key_scopes="calibrate")


def lci_tool(fleet, *args):
    return subprocess.run(
        [sys.executable, "-m", "host_tools.lci_tool", "--port", fleet["port"], "--keys",
         str(fleet["keys"]), *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def _visit(fleet, tmp_path, url):
    log = tmp_path / "visit.jsonl"
    done = lci_tool(fleet, "service", "--key", str(fleet["center_key"]), "--yes", "--out",
                    str(log), "--upload", url, "--json", "-q")
    return done, log


def test_lci_tool_service_uploads_the_visit_filed_with_the_client(live_server, books, fleet,
                                                                   center, tmp_path):
    ref = books.open(serial=SERIAL, email="driver@example.com")
    url = live_server.url + "/service/visits/upload/"
    done, log = _visit(fleet, tmp_path, url)
    assert done.returncode == 0, done.stderr
    receipt = json.loads(done.stdout)
    [visit] = Visit.objects.all()
    assert receipt["upload"] == {"visit": visit.pk, "client": ref, "serial": SERIAL,
                                 "records": visit.log_records, "filed": True,
                                 "center": "mpls-1"}
    assert (visit.center, visit.client_ref, visit.serial, visit.kind, visit.source) == (
        center, ref, SERIAL, "calibration", "upload")
    rows = log.read_text().splitlines()
    assert visit.log_records == len(rows) == receipt["log"]["records"] > 0
    last = bytes.fromhex(json.loads(rows[-1])["raw"])
    assert visit.log_first == 0 and visit.log_head == eventlog.record_hash(last).hex()
    assert visit.receipt["done"] == receipt["done"]
    from provider.web.portal.models import HandsetReport
    state = HandsetReport.objects.get(serial=SERIAL)
    assert (state.source, state.compliance) == ("visit", receipt["after"]["compliance"])

    # the same receipt and log again (a retry after a lost answer): the same visit, nothing new
    again = upload(url, fleet["signer"], kind="calibration", receipt=visit.receipt,
                   log_text=visit.log)
    assert (again["visit"], again["filed"]) == (visit.pk, False)
    assert Visit.objects.count() == 1


def _refused(url, request):
    with pytest.raises(UploadError) as caught:
        send(request)
    assert caught.value.refused and Visit.objects.count() == 0
    return str(caught.value)


def _tampered(rows: list[str]) -> str:
    row = json.loads(rows[3])
    raw = bytearray.fromhex(row["raw"])
    raw[-1] ^= 1  # one bit of one record
    row["raw"] = raw.hex()
    return "\n".join(rows[:3] + [json.dumps(row)] + rows[4:]) + "\n"


def test_a_tampered_log_a_wrong_key_and_a_replay_are_refused_and_store_nothing(
        live_server, books, fleet, center, tmp_path):
    books.open(serial=SERIAL, email="driver@example.com")
    url = live_server.url + "/service/visits/upload/"
    log = tmp_path / "visit.jsonl"
    done = lci_tool(fleet, "log", "download", "--out", str(log), "-q")
    assert done.returncode == 0, done.stderr
    rows = log.read_text().splitlines()
    receipt = {"serial": SERIAL, "done": ["event log downloaded and verified"]}
    signer = fleet["signer"]

    def signed(text, by=signer, **kw):
        return signed_request(url, by, kind="calibration", receipt=receipt, log_text=text, **kw)

    # a log changed after download, signed by the center: the chain check on the server
    text = _refused(url, signed(_tampered(rows)))
    assert text.startswith("the server refused the upload: the event log does not verify: "
                           "record ") and "\n" not in text

    # a body changed in transit: the signature no longer covers it
    request = signed("\n".join(rows) + "\n")
    request.data = request.data.replace(b'"calibration"', b'"lockout"')
    assert "is not signed by center mpls-1's registered key center-0042" in _refused(url, request)

    # a key of the same name that is not the registered one (another key pair)
    forged = keys.delegate(keys.load_root_key(fleet["keys"] / keys.ROOT_KEY_FILE),
                           "center-0042", ["calibrate"], issued=0, expires=2 ** 31)
    assert "is not signed by center mpls-1's registered key" in _refused(
        url, signed("\n".join(rows) + "\n", by=forged))
    stranger = keys.delegate(keys.load_root_key(fleet["keys"] / keys.ROOT_KEY_FILE),
                             "center-9999", ["calibrate"], issued=0, expires=2 ** 31)
    assert "key 'center-9999' is no active center's registered key" in _refused(
        url, signed("\n".join(rows) + "\n", by=stranger))

    # a captured upload sent again an hour later, and one sent to another server
    old = signed("\n".join(rows) + "\n", now=int(time.time()) - 3600)
    assert "more than 10 minutes from now: a replayed or delayed upload" in _refused(url, old)
    elsewhere = signed_request("https://other.example/service/visits/upload/", signer,
                               kind="calibration", receipt=receipt,
                               log_text="\n".join(rows) + "\n")
    elsewhere.full_url = url
    assert "is signed for 'https://other.example/service/visits/upload/'" in _refused(
        url, elsewhere)

    # and the untouched upload is filed, also at the URL typed without its last slash
    assert send(signed("\n".join(rows) + "\n"))["filed"] is True
    assert Visit.objects.count() == 1
    bare = signed_request(url.rstrip("/"), signer, kind="calibration", receipt=receipt,
                          log_text="\n".join(rows) + "\n")
    assert send(bare)["filed"] is False


def test_the_tool_says_in_one_line_when_the_server_refuses(live_server, books, fleet, center,
                                                           tmp_path):
    # the handset is no client's: the visit is done, the upload is refused
    done, _ = _visit(fleet, tmp_path, live_server.url + "/service/visits/upload/")
    assert done.returncode == exitcodes.UPLOAD_FAILED
    assert done.stderr.strip().splitlines()[-1] == (
        f"lci-tool: the server refused the upload: no client has handset {SERIAL}")
    assert "Traceback" not in done.stderr and Visit.objects.count() == 0
    receipt = json.loads(done.stdout)
    assert receipt["passed"] and "error" in receipt["upload"]


def test_bad_upload_arguments_are_one_line_before_the_visit(fleet, tmp_path):
    done = lci_tool(fleet, "service", "--key", str(fleet["center_key"]), "--upload", "ftp://x")
    assert done.returncode == exitcodes.USAGE
    assert done.stderr.strip() == "lci-tool: --upload ftp://x: expected an http:// or https:// URL"
    done = lci_tool(fleet, "service", "--upload", "http://127.0.0.1:9/")  # the root key
    assert done.returncode == exitcodes.CREDENTIAL and "delegated key" in done.stderr


def test_bad_requests_get_one_line_never_a_500(books, tmp_path):
    from django.test import Client

    from host_tools.visit_upload import body
    root = keys.RootKey.generate()
    signer = keys.delegate(root, "center-0007", ["calibrate"], issued=0, expires=2 ** 31)
    Center.objects.create(name="C", code="c-7", street="s", city="c", state="MN",
                          postal_code="55401", email="c@example.com", key_id="center-0007",
                          key_public=signer.public_key.hex())
    url = "http://testserver/service/visits/upload/"
    web = Client()

    def post(data: bytes, key="center-0007", sign=True):
        headers = {"HTTP_X_LCI_KEY_ID": key} if key else {}
        if sign:
            headers["HTTP_X_LCI_SIGNATURE"] = signer.sign(data).hex()
        return web.post("/service/visits/upload/", data, content_type="application/json",
                        **headers)

    now = int(time.time())
    cases = [
        (post(b"{}", key=""), 401, "carries no X-LCI-Key-Id header"),
        (post(b"{}", sign=False), 403, "is not signed by center c-7's registered key"),
        (post(b"not json"), 400, "not a JSON document"),
        (post(b"[1, 2]"), 400, "not a lci-visit-upload/1 document"),
        (post(body(url, "center-0007", "teleport", "X", {"serial": "X"}, "", now)), 400,
         "unknown visit kind 'teleport'"),
        (post(body(url, "center-0007", "calibration", "X", {"serial": "Y"}, "", now)), 400,
         "serial is missing or not the upload's"),
        (post(body(url, "center-0007", "calibration", "X", {"serial": "X"}, "", now)), 422,
         "no client has handset X"),
        (post(body(url, "center-0007", "calibration", SERIAL, {"serial": SERIAL}, "x\n", now,
                   "csv")), 422, "no client has handset"),
    ]
    books.open(serial=SERIAL)
    cases += [
        (post(body(url, "center-0007", "calibration", SERIAL, {"serial": SERIAL}, "", now)),
         422, "holds no event log"),
        (post(body(url, "center-0007", "calibration", SERIAL, {"serial": SERIAL}, "{oops\n"
                   "{}\n", now)), 422, "the event log cannot be read"),
        (post(body(url, "center-0007", "calibration", SERIAL, {"serial": SERIAL}, "x", now,
                   "xml")), 422, "unknown log format 'xml'"),
    ]
    for answer, status, words in cases:
        assert answer.status_code == status, (answer.content, words)
        assert words in answer.json()["error"] and "\n" not in answer.json()["error"]
    assert web.get("/service/visits/upload/").status_code == 405
    assert Visit.objects.count() == 0
