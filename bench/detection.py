#!/usr/bin/env python3
"""Detection latency: a target goes down → warroom's monitor opens an incident → the page
arrives at a local webhook receiver. p50/p99 over N trials; the issue's bound is
interval × failures_to_down + 1 s. Usage:
  python3 bench/detection.py --warroom target/release/warroom --trials 20
"""
import argparse, json, os, shutil, statistics, subprocess, tempfile, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state = {"status": 200}
pages = []
cond = threading.Condition()

class Target(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(state["status"]); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        v = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        t = time.perf_counter()
        with cond:
            if v.get("kind") == "page": pages.append((t, v.get("incident"))); cond.notify_all()
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass

def api(method, path, token, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:18092{path}", method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r: return json.loads(r.read() or b"null")

def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warroom", default="target/release/warroom")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--interval", type=int, default=1)
    ap.add_argument("--failures", type=int, default=2)
    a = ap.parse_args()
    tgt = ThreadingHTTPServer(("127.0.0.1", 0), Target); threading.Thread(target=tgt.serve_forever, daemon=True).start()
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook); threading.Thread(target=hook.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp()
    cfg = os.path.join(work, "w.toml")
    open(cfg, "w").write(f"""
[[channels]]
name = "pager"
kind = "webhook"
url = "http://127.0.0.1:{hook.server_address[1]}/"
secret_env = "BENCH_SECRET"
[routing]
page = ["pager"]
[[monitors]]
id = "shop-web"
service = "shop"
user_facing = true
interval_secs = {a.interval}
timeout_ms = 500
failures_to_down = {a.failures}
successes_to_up = 1
[monitors.check]
kind = "http"
url = "http://127.0.0.1:{tgt.server_address[1]}/health"
""")
    env = dict(os.environ, BENCH_SECRET="bench", RUST_LOG="error")
    db = f"sqlite://{work}/w.db"
    token = subprocess.check_output([a.warroom, "token", "create", "--role", "responder", "--name", "b", "--database", db], env=env, stderr=subprocess.DEVNULL).decode().strip()
    w = subprocess.Popen([a.warroom, "serve", "--config", cfg, "--database", db, "--listen", "127.0.0.1:18092"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    to_incident, to_page = [], []
    try:
        time.sleep(3)
        for i in range(a.trials):
            n0 = len(pages)
            state["status"] = 500
            t0 = time.perf_counter()
            wall0 = time.time()
            with cond:
                cond.wait_for(lambda: len(pages) > n0, timeout=30)
            if len(pages) > n0:
                tp, number = pages[n0]
                to_page.append((tp - t0) * 1000)
                inc = api("GET", f"/api/v1/incidents/{number}", token)
                declared = time.mktime(time.strptime(inc["declared_at"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + float("0." + inc["declared_at"][20:-1] if "." in inc["declared_at"] else 0)
                to_incident.append((declared - wall0) * 1000)
            state["status"] = 200
            # Let it recover, then close it so the next failure opens a new incident.
            deadline = time.time() + 20
            while time.time() < deadline and api("GET", f"/api/v1/incidents/{number}", token)["status"] != "monitoring":
                time.sleep(0.1)
            api("POST", f"/api/v1/incidents/{number}/transition", token, {"to": "resolved"})
            api("POST", f"/api/v1/incidents/{number}/transition", token, {"to": "closed"})
            time.sleep(a.interval)
        bound = (a.interval * a.failures + 1) * 1000
        out = {"trials": len(to_page), "interval_s": a.interval, "failures_to_down": a.failures, "bound_ms": bound,
               "down_to_declared_ms": {"p50": round(statistics.median(to_incident)), "p99": round(pct(to_incident, 99))},
               "down_to_page_ms": {"p50": round(statistics.median(to_page)), "p99": round(pct(to_page, 99))}}
        print(json.dumps(out, indent=2))
    finally:
        w.terminate(); w.wait(); shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
