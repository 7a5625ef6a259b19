#!/usr/bin/env python3
"""test_fetchctl.py - fetchctl as people use it: TSV and human output, --output, --resume after a
killed job (every URL exactly once, nothing refetched that already had a result), and the live
progress line on a real terminal (tmux), against a real fetchd and the scripted server.

Run from the repository root:  python3 tests/integration/test_fetchctl.py [NAME-FILTER...]
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import Fetchd, Hostile, Suite, fetchctl, parse_jsonl, pattern_sha256, _bin  # noqa: E402

suite = Suite(__file__, timeout=90)
_state = {}


def hostile() -> Hostile:
    if "h" not in _state:
        _state["h"] = Hostile()
    return _state["h"]


def daemon() -> Fetchd:
    if "d" not in _state:
        _state["d"] = Fetchd({"daemon": {"log_level": "warn"}, "fetch": {"max_inflight": 16}})
    return _state["d"]


def H(path):
    return hostile().url(path)


def tmpfile(name, text=""):
    d = _state.setdefault("dir", tempfile.mkdtemp(prefix="fetchctl-test-"))
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text)
    return p


@suite.test
def tsv_with_chosen_fields_and_escaping():
    urls = [H("/ok?len=10&t=1"), H("/redirect?code=301&to=/ok%3Flen%3D3"), "http://bad host/"]
    rc, out, err = fetchctl(daemon().sock, ["--format", "tsv", "--fields",
                                            "url,status,error.class,body_bytes,redirects,error.message",
                                            "submit", "-"], input_text="\n".join(urls) + "\n")
    assert rc == 5, (rc, err)
    lines = out.splitlines()
    assert lines[0] == "url\tstatus\terror.class\tbody_bytes\tredirects\terror.message", lines[0]
    rows = {r.split("\t")[0]: r.split("\t") for r in lines[1:]}
    assert len(rows) == 3 and all(len(r) == 6 for r in rows.values()), lines
    assert rows[H("/ok?len=10&t=1")][1:4] == ["200", "", "10"], rows
    redir = rows[H("/redirect?code=301&to=/ok%3Flen%3D3")]
    assert redir[1] == "200" and json.loads(redir[4])[0]["status"] == 301, redir
    bad = rows["http://bad host/"]
    assert bad[1] == "" and bad[2] == "url" and "space" in bad[5], bad
    # default fields
    rc, out, err = fetchctl(daemon().sock, ["--format", "tsv", "submit", "-"], input_text=urls[0] + "\n")
    assert out.splitlines()[0] == "url\tstatus\terror.class\tbody_bytes\ttimings_ms.total\tfinal_url", out
    rc, out, err = fetchctl(daemon().sock, ["--fields", "url", "submit", "-"], input_text=urls[0] + "\n")
    assert rc == 2 and "--fields needs --format tsv" in err, err
    rc, out, err = fetchctl(daemon().sock, ["--format", "xml", "submit", "-"], input_text=urls[0] + "\n")
    assert rc == 2 and "--format must be" in err, err


@suite.test
def output_file_and_human_lines():
    out_path = tmpfile("results.jsonl")
    urls = [H("/ok?len=%d&o=1" % n) for n in (1, 2000, 3 << 20)]
    rc, out, err = fetchctl(daemon().sock, ["--output", out_path, "submit", "-"], input_text="\n".join(urls) + "\n")
    assert rc == 0 and out == "", (rc, out, err)
    with open(out_path) as f:
        res = parse_jsonl(f.read())
    assert sorted(r["url"] for r in res) == sorted(urls)
    assert {r["url"]: r["body_sha256"] for r in res}[urls[2]] == pattern_sha256(3 << 20)
    rc, out, err = fetchctl(daemon().sock, ["--format", "human", "submit", "-"],
                            input_text="\n".join(urls + [H("/hang"), "  timeout_ms=200"]) + "\n")
    lines = {l.split()[-1] if not l.startswith("ERR") else l.split()[2]: l for l in out.splitlines()}
    assert rc == 5 and len(lines) == 4, out
    assert lines[urls[0]].split()[:3] == ["200", "1", "B"], lines[urls[0]]
    assert lines[urls[1]].split()[:3] == ["200", "2.0", "KiB"], lines[urls[1]]
    assert lines[urls[2]].split()[:3] == ["200", "3.0", "MiB"], lines[urls[2]]
    assert lines[H("/hang")].startswith("ERR") and "timeout/total" in lines[H("/hang")], lines[H("/hang")]
    assert "total timeout after 200 ms" in lines[H("/hang")]


@suite.test
def resume_after_a_killed_job_gives_every_url_exactly_once():
    h = hostile()
    urls = [H("/delay?ms=200&len=%d&res=1" % i) for i in range(1, 81)]
    lst = tmpfile("urls.txt", "\n".join(urls) + "\n")
    out_path = tmpfile("resume.jsonl")
    argv = [_bin("FETCHCTL_BIN", "fetchctl"), "-s", daemon().sock, "-q", "--output", out_path, "--resume",
            out_path, "submit", lst]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.7)  # 16 at a time, 200 ms each: some 40-60 done
    p.send_signal(signal.SIGKILL)
    p.wait()
    with open(out_path, "rb") as f:
        data = f.read()
    with open(out_path, "ab") as f:
        f.write(b'{"url":"' + urls[-1].encode() + b'","final_')  # a line cut short by the crash
    first = {r["url"] for r in parse_jsonl(data.decode())}
    assert 10 <= len(first) < len(urls), "killed too early or too late: %d results" % len(first)
    before = {e["target"] for e in h.log("/delay?ms=200&len=")}
    t = time.time()
    rc, out, err = fetchctl(daemon().sock, ["--output", out_path, "--resume", out_path, "submit", lst])
    assert rc == 0, (rc, err)
    assert "skipped %d URLs that already have a result" % len(first) in err, err
    with open(out_path) as f:
        text = f.read()
    res = parse_jsonl(text)
    got = [r["url"] for r in res]
    assert sorted(got) == sorted(urls), "every URL exactly once: %d lines, %d distinct" % (len(got), len(set(got)))
    after = [e["target"] for e in h.log("/delay?ms=200&len=") if e["t"] >= t]
    refetched = {H(x) for x in after} & first
    assert not refetched, "URLs with a result were fetched again: %s" % sorted(refetched)[:3]
    assert len(before) >= len(first)
    # resuming a finished job does nothing
    rc, out, err = fetchctl(daemon().sock, ["--output", out_path, "--resume", out_path, "submit", lst])
    assert rc == 0 and "skipped 80 URLs" in err and "0 URLs in" in err, err


def tmux_run(cmd, wait_s):
    """Run cmd in a detached tmux pane of 160x30; capture the screen while it runs and at the end."""
    name = "fetchctl-test-%d" % os.getpid()
    subprocess.run(["tmux", "kill-session", "-t", name], stderr=subprocess.DEVNULL)
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "160", "-y", "30", cmd + "; sleep 30"],
                   check=True)
    shots = []
    end = time.time() + wait_s
    while time.time() < end:
        shots.append(subprocess.run(["tmux", "capture-pane", "-p", "-t", name], capture_output=True,
                                    text=True).stdout)
        time.sleep(0.1)
    subprocess.run(["tmux", "kill-session", "-t", name], stderr=subprocess.DEVNULL)
    return shots


@suite.test
def progress_line_on_a_terminal():
    assert shutil.which("tmux"), "tmux is needed (tools/deps.sh installs it)"
    lst = tmpfile("progress.txt", "\n".join(H("/delay?ms=150&len=%d&pg=1" % i) for i in range(1, 121)) +
                  "\n" + H("/hang?pg=1") + "\n  timeout_ms=300\n")
    cmd = "%s -s %s submit %s" % (_bin("FETCHCTL_BIN", "fetchctl"), daemon().sock, lst)
    shots = tmux_run(cmd, 3.5)
    import re
    live = [s for s in shots if re.search(r"^\d+/121 done +\d+/s +in flight \d+ ", s, re.M)]
    assert live, "no progress line seen:\n%s" % shots[len(shots) // 2]
    mid = [s for s in live if re.search(r"^(\d+)/121 done", s, re.M) and
           0 < int(re.search(r"^(\d+)/121 done", s, re.M).group(1)) < 121]
    assert mid and re.search(r"ETA \d+:\d\d", mid[0]), "no ETA while running:\n%s" % (mid or live)[0]
    final = shots[-1]
    assert re.search(r"^121/121 done .*errors: timeout 1", final, re.M), final
    assert "fetchctl: 121 URLs in" in final, final
    # human lines on the terminal, progress kept below them
    assert re.search(r"^200 +\d+ B +\d+\.\d ms  http://", final, re.M), final
    # not on a pipe, and not with -q
    rc, out, err = fetchctl(daemon().sock, ["submit", lst])
    assert "done" not in err.splitlines()[0] and "\r" not in err, err


@suite.test
def daemon_healthy_at_the_end():
    d = daemon()
    assert d.alive()
    assert d.stop() == 0



# ---- ping, stats, version ---------------------------------------------------------------------------

@suite.test
def ping_version_and_stats_answer_for_people_and_as_json():
    with Hostile() as h, Fetchd() as d:
        rc, out, err = fetchctl(d.sock, ["ping"])
        assert rc == 0 and out.startswith("fetchd/0.1.0 (") and ", pid %d, up 0:00:" % d.pid in out, (out, err)
        rc, out, err = fetchctl(d.sock, ["--json", "ping"])
        p = json.loads(out)
        assert rc == 0 and p["server"] == "fetchd/0.1.0" and p["pid"] == d.pid and p["workers"] >= 1, p
        rc, out, err = fetchctl(d.sock, ["version"])
        assert rc == 0 and out.splitlines()[0] == "fetchctl 0.1.0" and "fetchd/0.1.0" in out, out
        rc, out, err = fetchctl(d.sock, ["--json", "version"])
        v = json.loads(out)
        assert v["fetchctl"] == "0.1.0" and v["fetchd"]["pid"] == d.pid, v
        # a batch of slow URLs is seen in flight, per worker too
        urls = [h.url("/delay?ms=1500&len=10&k=%d" % i) for i in range(12)]
        urls += [h.url("/ok?len=7&host=%d" % i, host="localhost") for i in range(3)]
        urls += ["http://127.0.0.1:1/refused", "ftp://x/"]
        path = os.path.join(d.dir, "u.txt")
        with open(path, "w") as f:
            f.write("".join(u + "\n" for u in urls))
        sub = subprocess.Popen([_bin("FETCHCTL_BIN", "fetchctl"), "-s", d.sock, "-q", "submit", path], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        time.sleep(0.6)
        rc, out, err = fetchctl(d.sock, ["--json", "stats"])
        s = json.loads(out)
        # 12 slow URLs of one host: 8 hold its connections (per_host_connections), 4 wait in its queue
        assert rc == 0 and s["clients"] == 2 and s["admitted"] == 12 and s["inflight"] == 8, s
        assert sum(w["inflight"] for w in s["per_worker"]) == 8 and len(s["per_worker"]) == s["workers"], s
        assert s["conns_open"] >= 8 and s["max_inflight"] == 1024 and s["memory"]["rss_bytes"] > 1 << 20, s
        out_, _ = sub.communicate(timeout=30)
        assert len(parse_jsonl(out_)) == len(urls)
        time.sleep(1.2)  # a whole second after the last result: the recent rate counts it
        rc, out, err = fetchctl(d.sock, ["--json", "stats"])
        s = json.loads(out)
        assert s["results"] == len(urls) and s["ok"] == 15 and s["failed"] == 2 and s["inflight"] == 0, s
        assert s["errors"]["connect"] == 1 and s["errors"]["url"] == 1 and sum(s["errors"].values()) == 2, s
        assert sum(w["ok"] for w in s["per_worker"]) == 15, s
        assert s["dns"]["hosts_file_hits"] >= 1 and s["conns"]["opened"] >= 9, s
        assert s["rate_per_s"]["last_10s"] > 0 and s["rate_per_s"]["since_start"] > 0, s
        rc, out, err = fetchctl(d.sock, ["stats"])
        assert rc == 0 and "results 17 (15 ok, 2 failed)" in out and "errors: url 1, connect 1" in out, out
        assert "  worker 0: in flight 0" in out and "memory: " in out, out
    rc, out, err = fetchctl("/nonexistent/fetchd.sock", ["stats"])
    assert rc == 3 and "cannot reach fetchd" in err, (rc, err)
    rc, out, err = fetchctl("/nonexistent/fetchd.sock", ["--json", "version"])
    assert rc == 3 and json.loads(out) == {"fetchctl": "0.1.0", "fetchd": None}, out

if __name__ == "__main__":
    suite.main()
