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
from harness import Fetchd, Hostile, Suite, fetchctl, parse_jsonl, pattern_sha256, wait_until, _bin  # noqa: E402

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


# ---- detached jobs -----------------------------------------------------------------------------------

def detach(d, urls, extra=()):
    rc, out, err = fetchctl(d.sock, ["--json", "submit", "--detach"] + list(extra) + ["-"],
                            input_text="".join(u + "\n" for u in urls))
    assert rc == 0, (rc, out, err)
    j = json.loads(out)
    assert j["urls"] == len(urls) and len(j["job"]) == 12, j
    return j["job"]


def job_files(d):
    return sorted(os.listdir(os.path.join(d.dir, "jobs")))


@suite.test
def detached_job_runs_without_its_client_and_is_collected_once():
    with Hostile() as h, Fetchd() as d:
        urls = [h.url("/delay?ms=%d&len=%d&k=%d" % (10 * (i % 30), i, i)) for i in range(200)]
        urls.append("not a url")
        job = detach(d, urls)
        rc, out, err = fetchctl(d.sock, ["--json", "jobs"])
        jobs = json.loads(out)["jobs"]
        assert rc == 0 and [j["id"] for j in jobs] == [job] and jobs[0]["urls"] == 201, jobs
        assert jobs[0]["state"] in ("running", "done") and jobs[0]["uid"] == 0, jobs
        assert job_files(d) == [job + ".results", job + ".urls"], job_files(d)
        rc, out, err = fetchctl(d.sock, ["status", job])
        assert rc == 0 and out.startswith(job + "  ") and "/201 results" in out, out
        # collected while it may still run: the stream follows the job to its end
        rc, out, err = fetchctl(d.sock, ["results", job])
        res = parse_jsonl(out)
        assert rc == 5 and len(res) == 201 and sorted(r["url"] for r in res) == sorted(urls), (rc, err)
        by = {r["url"]: r for r in res}
        assert by["not a url"]["error"]["class"] == "url"
        assert all(by[u]["body_sha256"] == pattern_sha256(i) for i, u in enumerate(urls[:-1]))
        # collected: gone, files too
        assert job_files(d) == []
        rc, out, err = fetchctl(d.sock, ["results", job])
        assert rc == 4 and "no job '%s'" % job in err, (rc, err)
        rc, out, err = fetchctl(d.sock, ["jobs"])
        assert rc == 0 and out == "no jobs\n", out
        rc, out, err = fetchctl(d.sock, ["status", "zz"])
        assert rc == 4 and "not a job id" in err, err


@suite.test
def cancel_ends_a_job_with_a_result_for_every_url():
    with Hostile() as h, Fetchd() as d:
        urls = [h.url("/delay?ms=400&len=10&c=%d" % i) for i in range(60)]
        job = detach(d, urls)
        time.sleep(0.6)
        rc, out, err = fetchctl(d.sock, ["--json", "cancel", job])
        st = json.loads(out)
        assert rc == 0 and st["state"] in ("cancelling", "cancelled"), st
        rc, out, err = fetchctl(d.sock, ["--format", "jsonl", "results", job])
        res = parse_jsonl(out)
        assert len(res) == 60 and sorted(r["url"] for r in res) == sorted(urls), err
        classes = [(r["error"] or {}).get("class") for r in res]
        assert classes.count(None) >= 8 and classes.count("cancelled") >= 30, classes
        assert set(classes) <= {None, "cancelled"}, classes
        # a finished job that nobody collects: cancel removes it with its results
        job = detach(d, [h.url("/ok?len=3")])
        wait_until(lambda: json.loads(fetchctl(d.sock, ["--json", "status", job])[1])["state"] == "done")
        rc, out, err = fetchctl(d.sock, ["cancel", job])
        assert rc == 0 and out == "job %s removed with its results\n" % job, out
        assert job_files(d) == []


@suite.test
def job_limits_and_a_submitter_that_leaves_early():
    import socket as so
    import struct
    with Hostile() as h, Fetchd({"jobs": {"max_jobs": 2, "max_bytes": "64K"}}) as d:
        slow = [h.url("/delay?ms=3000&len=1&j=%d" % i) for i in range(3)]
        a, b = detach(d, slow), detach(d, slow)
        rc, out, err = fetchctl(d.sock, ["submit", "--detach", "-"], input_text=slow[0] + "\n")
        assert rc == 4 and "too many jobs: 2 are kept already ([jobs] max_jobs)" in err, err
        for j in (a, b):
            assert fetchctl(d.sock, ["cancel", j])[0] == 0
            rc, out, err = fetchctl(d.sock, ["results", j])
            assert len(parse_jsonl(out)) == 3, err
        big = [h.url("/ok?len=1&pad=" + "x" * 900 + "&i=%d" % i) for i in range(100)]
        rc, out, err = fetchctl(d.sock, ["submit", "--detach", "-"], input_text="".join(u + "\n" for u in big))
        assert rc == 4 and "larger than [jobs] max_bytes (65536)" in err, err
        wait_until(lambda: job_files(d) == [], what="the refused job's files removed")
        # a submitter that goes away before END takes its job with it
        base = d.fd_count()
        s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
        s.connect(d.sock)
        hello = b'{"protocol":1,"detach":true}'
        body = b"".join((u + "\n").encode() for u in slow)
        s.sendall(struct.pack(">IB", len(hello), 1) + hello + struct.pack(">IB", len(body), 2) + body)
        wait_until(lambda: len(job_files(d)) == 2, what="the job's files")
        s.close()
        wait_until(lambda: job_files(d) == [], what="the abandoned job's files removed")
        wait_until(lambda: json.loads(fetchctl(d.sock, ["--json", "jobs"])[1])["jobs"] == [])
        d.fds_settle(base)
        rc, out, err = fetchctl(d.sock, ["submit", "--detach", "--warc", "x.warc", "-"], input_text="")
        assert rc == 2 and "--detach goes with submit" in err, err
        # stopping fetchd removes what is left
        detach(d, slow)
        assert d.stop() == 0 and job_files(d) == []

if __name__ == "__main__":
    suite.main()
