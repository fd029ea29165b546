#!/usr/bin/env python3
"""Runs each Tor test binary N times in a row and prints its pass rate.

Every run is a fresh process, so every run brings up its own private Tor
network (tornet.py, started by the first test that asks for it) and tears it
down when the process ends. The binaries are built as CI builds them (the
README's test command, `cargo test --workspace --all-features --locked`), and
run as cargo runs them (from their package's directory, with
RICOCHET_REQUIRE_TOR=1 so that nothing skips).

  python3 testnet/passrate.py --runs 20                   # every Tor test binary
  python3 testnet/passrate.py --runs 20 --bins arti,tor    # some of them
  python3 testnet/passrate.py --runs 5 --bins arti -- arti_dials_arti   # arguments for the binary

Every run writes the whole debug log of the process (RICOCHET_TEST_LOG, arti's
included), which costs the tests some CPU: a harsher condition than CI's. For
every failed run it keeps, under --out (default target/passrate): the binary's
output, that log and the notice logs of the private network's tors; of a
passed run only the output, and its debug log too if arti killed a circuit
in it (see the last column of the table). The table at the end is Markdown, for
testnet/README.md.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Test binaries that run on the private Tor network: (package, test target).
TOR_BINARIES = [
    ("ricochet-transport", "arti"),
    ("ricochet-transport", "conformance"),
    ("ricochet-client", "tor"),
    ("ricochet-client", "anonymity"),
    ("ricochet-messenger", "plain"),
]


def build(cargo_args):
    """Builds every test binary; returns {(package, target): (executable, package dir)}."""
    cmd = ["cargo", "test", "--workspace", "--all-features", "--locked", "--no-run",
           "--message-format=json-render-diagnostics"] + cargo_args
    print("+", " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, check=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
            continue
        target = msg["target"]
        if "test" not in target["kind"]:
            continue
        package = msg["package_id"]
        # "path+file:///…/ricochet-client#0.1.0", "path+file:///…/messenger#ricochet-messenger@0.1.0"
        # or (older cargo) "ricochet-client 0.1.0 (path…)"
        if "#" in package:
            path, fragment = package.split("#", 1)
            name = fragment.split("@")[0] if "@" in fragment else path.rsplit("/", 1)[-1]
        else:
            name = package.split()[0]
        found[(name, target["name"])] = (msg["executable"], os.path.dirname(msg["manifest_path"]))
    return found


def network_dir(pid):
    """The private network of the test process `pid` (see testnet/src/lib.rs)."""
    return os.path.join(tempfile.gettempdir(), f"ricochet-tornet-{pid}")


def remove_network(pid):
    """Stops the run's tors, then removes their directory. They would exit by themselves
    within 15 s of the test process (their owning controller), but a tor whose data
    directory is gone when it shuts down fails to write its state and never exits (tor
    0.4.9: "Catching signal TERM, exiting cleanly", then "Unable to write state ... will
    try again later"): removing the directory first leaked one tor now and then."""
    net = os.path.join(network_dir(pid), "net")
    tornet = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tornet.py")
    subprocess.run([sys.executable, tornet, "down", "--dir", net], capture_output=True, check=False)
    shutil.rmtree(network_dir(pid), ignore_errors=True)


def keep_network_logs(pid, dest):
    """Copies the tors' logs of the private network of process `pid`."""
    root = os.path.join(network_dir(pid), "net")
    if not os.path.isdir(root):
        return
    for node in sorted(os.listdir(root)):
        for log in ("notice.log", "info.log"):
            src = os.path.join(root, node, log)
            if os.path.isfile(src):
                shutil.copy(src, os.path.join(dest, f"tor-{node}-{log}"))


def count_in_logs(run_dir, text):
    """How many lines of the debug logs in `run_dir` contain `text`."""
    count = 0
    for name in os.listdir(run_dir):
        if name.startswith("debug.log"):
            with open(os.path.join(run_dir, name), errors="replace") as f:
                count += sum(1 for line in f if text in line)
    return count


def run_once(executable, cwd, extra, log_prefix):
    """Runs the binary once; returns (exit code, seconds, output, pid)."""
    env = dict(os.environ)
    env["RICOCHET_REQUIRE_TOR"] = "1"
    env["RICOCHET_TEST_LOG"] = log_prefix
    env.setdefault("RUST_BACKTRACE", "1")
    started = time.monotonic()
    # --nocapture: what passing tests print counts too (TOLERATED circuit loss).
    proc = subprocess.Popen([executable, "--nocapture"] + extra, cwd=cwd, env=env,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    output, _ = proc.communicate()
    return proc.returncode, time.monotonic() - started, output, proc.pid


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs per binary (default 20)")
    parser.add_argument("--bins", default=",".join(t for _, t in TOR_BINARIES),
                        help="comma-separated test targets (default: every Tor test binary)")
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "passrate"),
                        help="where failed runs' output and logs are kept")
    parser.add_argument("--release", action="store_true", help="build and run optimised")
    parser.add_argument("--stop-on-failure", action="store_true",
                        help="stop a binary's loop at its first failure (to catch a flake's log)")
    parser.add_argument("extra", nargs="*", help="arguments for the test binaries (after --)")
    args = parser.parse_args()

    wanted = [t for t in args.bins.split(",") if t]
    known = {t: p for p, t in TOR_BINARIES}
    for target in wanted:
        if target not in known:
            parser.error(f"unknown Tor test binary {target!r} (known: {', '.join(known)})")
    built = build(["--release"] if args.release else [])
    os.makedirs(args.out, exist_ok=True)

    missing = [(known[t], t) for t in wanted if (known[t], t) not in built]
    if missing:
        sys.exit(f"cargo built no test binary {missing}")
    # Run frozen copies: a build during the loop (same file names, new code)
    # must not change what is measured half-way.
    frozen = os.path.join(args.out, f"bin-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    os.makedirs(frozen)
    for key in [(known[t], t) for t in wanted]:
        executable, cwd = built[key]
        copy = os.path.join(frozen, os.path.basename(executable))
        shutil.copy2(executable, copy)
        built[key] = (copy, cwd)
    rows = []
    for target in wanted:
        executable, cwd = built[(known[target], target)]
        passes, times, failures, tolerated, kills = 0, [], [], 0, 0
        for i in range(1, args.runs + 1):
            run_dir = os.path.join(args.out, f"{target}-{time.strftime('%Y%m%d-%H%M%S')}-{i}")
            os.makedirs(run_dir)
            log_prefix = os.path.join(run_dir, "debug.log")
            rc, elapsed, output, pid = run_once(executable, cwd, args.extra, log_prefix)
            times.append(elapsed)
            # Steps that met a circuit loss and passed on their second try
            # (tests/common/mod.rs of ricochet-transport).
            losses = output.count("TOLERATED circuit loss")
            tolerated += losses
            # arti closing a circuit over a cell on a stream it had forgotten
            # (the cause of issue 23), whether or not a test failed by it.
            killed = count_in_logs(run_dir, "on a closed or non-existent stream")
            # ... less those that tests/arti.rs provokes on purpose.
            killed = max(0, killed - output.count("the host killed the circuit in round"))
            kills += killed
            with open(os.path.join(run_dir, "output.txt"), "w") as f:
                f.write(output)
            if rc == 0:
                passes += 1
                if not killed:
                    # The output stays (it has the tests' own figures).
                    for name in os.listdir(run_dir):
                        if name.startswith("debug.log"):
                            os.remove(os.path.join(run_dir, name))
                verdict = "pass"
            else:
                keep_network_logs(pid, run_dir)
                failed = [line for line in output.splitlines()
                          if line.startswith("test ") and line.endswith("FAILED")]
                failures.append((i, run_dir, failed))
                verdict = f"FAIL ({', '.join(failed) or f'exit {rc}'}) -> {run_dir}"
            remove_network(pid)
            note = f", {losses} tolerated circuit loss(es)" if losses else ""
            note += f", arti killed {killed} circuit(s) over a forgotten stream" if killed else ""
            print(f"{target} run {i}/{args.runs}: {verdict} in {elapsed:.0f} s{note}", flush=True)
            if rc != 0 and args.stop_on_failure:
                break
        rows.append((f"{known[target]} `{target}`", len(times), passes, times, failures, tolerated, kills))

    print()
    print("| binary | runs | passes | pass rate | time per run (median, max) "
          "| tolerated circuit losses | circuits arti killed over a forgotten stream |")
    print("|---|---|---|---|---|---|---|")
    for name, runs, passes, times, _, tolerated, kills in rows:
        ordered = sorted(times)
        median = ordered[len(ordered) // 2]
        print(f"| {name} | {runs} | {passes} | {100.0 * passes / runs:.0f} % | "
              f"{median:.0f} s, {ordered[-1]:.0f} s | {tolerated} | {kills} |")
    for name, _, _, _, failures, _, _ in rows:
        for i, run_dir, failed in failures:
            print(f"{name} run {i}: {', '.join(failed) or 'failed'}: {run_dir}")
    sys.exit(0 if all(passes == runs for _, runs, passes, *_ in rows) else 1)


if __name__ == "__main__":
    main()
