#!/usr/bin/env python3
"""Alert ingestion: warroom (durable, SQLite) vs Prometheus Alertmanager 0.25, same wrk script.

Four loads, each for --seconds with 2 wrk threads and each of --connections: batches of 100 with
repeated / new fingerprints, single alerts with repeated / new fingerprints. Reports alerts/s
(requests/s x batch), non-2xx answers, and each server's peak RSS. With --baseline, an older
warroom binary runs the same loads in the same run, for before/after numbers. With --runs N,
every measurement is repeated N times (round robin, so noise from the shared machine hits all
servers alike) and the median is reported. Usage:
  python3 bench/ingest.py --warroom target/release/warroom
  python3 bench/ingest.py --warroom target/release/warroom --baseline /tmp/warroom-old --connections 16,64 --runs 3
"""
import argparse, json, os, re, shutil, statistics, subprocess, tempfile, time, urllib.request

def rss_mb(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmHWM"):
            return round(int(l.split()[1]) / 1024, 1)

RUNS = iter(range(1, 1_000_000))

def wrk(url, batch, fresh, token, seconds, conns):
    # Each run its own "new" fingerprints: the same RUN again would send repeats.
    env = dict(os.environ, BATCH=str(batch), FRESH="1" if fresh else "0", RUN=f"{os.getpid()}x{next(RUNS)}")
    if token: env["TOKEN"] = token
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "-s", "bench/wrk/alerts.lua", url], env=env, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"alerts_per_s": round(rps * batch), "errors": int(non2xx.group(1)) if non2xx else 0}

def wait(url):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).read(); return
        except Exception: time.sleep(0.05)

def start_warroom(binary, work, name, port, env):
    db = f"sqlite://{work}/{name}.db"
    token = subprocess.check_output([binary, "token", "create", "--role", "responder", "--name", "b", "--database", db], env=env, stderr=subprocess.DEVNULL).decode().strip()
    p = subprocess.Popen([binary, "serve", "--database", db, "--listen", f"127.0.0.1:{port}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait(f"http://127.0.0.1:{port}/healthz")
    return p, token

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warroom", default="target/release/warroom")
    ap.add_argument("--baseline", help="an older warroom binary to measure in the same run")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", default="16", help="comma-separated wrk connection counts")
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()
    work = tempfile.mkdtemp()
    env = dict(os.environ, RUST_LOG="error")
    servers = {}
    w, token = start_warroom(a.warroom, work, "w", 18093, env)
    servers["warroom"] = (w, "http://127.0.0.1:18093", token)
    if a.baseline:
        bw, btoken = start_warroom(a.baseline, work, "base", 18095, env)
        servers["warroom_before"] = (bw, "http://127.0.0.1:18095", btoken)
    open(f"{work}/am.yml", "w").write("route:\n  receiver: none\nreceivers:\n- name: none\n")
    am = subprocess.Popen(["prometheus-alertmanager", f"--config.file={work}/am.yml", f"--storage.path={work}/am", "--web.listen-address=127.0.0.1:19094", "--cluster.listen-address="], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait("http://127.0.0.1:19094/-/ready")
    servers["alertmanager"] = (am, "http://127.0.0.1:19094", None)
    res = {"seconds": a.seconds, "runs": a.runs, "wrk_threads": 2}
    try:
        for conns in [int(c) for c in a.connections.split(",")]:
            for batch, fresh in [(100, False), (100, True), (1, False), (1, True)]:
                key = f"c{conns}_batch{batch}_{'new' if fresh else 'repeated'}"
                samples = {name: [] for name in servers}
                errors = {name: 0 for name in servers}
                for _ in range(a.runs):
                    for name, (_, url, tok) in servers.items():
                        r = wrk(url, batch, fresh, tok, a.seconds, conns)
                        samples[name].append(r["alerts_per_s"]); errors[name] += r["errors"]
                row = {name: {"alerts_per_s": round(statistics.median(s)), "samples": s, "errors": errors[name]} for name, s in samples.items()}
                am_rate = max(1, row["alertmanager"]["alerts_per_s"])
                row["ratio_warroom_over_alertmanager"] = round(row["warroom"]["alerts_per_s"] / am_rate, 3)
                if a.baseline:
                    row["ratio_before_over_alertmanager"] = round(row["warroom_before"]["alerts_per_s"] / am_rate, 3)
                res[key] = row
                print(key, json.dumps({k: (v["alerts_per_s"] if isinstance(v, dict) else v) for k, v in row.items()}), flush=True)
        res["peak_rss_mb"] = {name: rss_mb(p.pid) for name, (p, _, _) in servers.items()}
        print(json.dumps(res, indent=2))
    finally:
        for p, _, _ in servers.values():
            p.terminate()
        for p, _, _ in servers.values():
            p.wait()
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
