"""``make bench``: run every ``bench/bench_*.py``, each in a process of its own, one after the
other (they share two cores), and print their reports.

    python3 bench/run.py [--quick] [names...]

``names`` filter the benchmarks (``webhook`` runs ``bench_webhook.py``); ``--quick`` is passed on
to the benchmarks that have that option (the others run in full). Progress goes to stderr as it
happens; the reports are printed together at the end. The exit status is non-zero when a
benchmark failed.
"""

import argparse
import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run of each bench")
    parser.add_argument("names", nargs="*", help="only these benchmarks (e.g. webhook)")
    args = parser.parse_args(argv)
    scripts = sorted(glob.glob(os.path.join(HERE, "bench_*.py")))
    if args.names:
        scripts = [s for s in scripts
                   if os.path.basename(s)[len("bench_"):-len(".py")] in args.names]
    if not scripts:
        sys.stderr.write("no benchmark to run\n")
        return 2
    reports, failed = [], []
    for script in scripts:
        name = os.path.basename(script)
        sys.stderr.write("== %s\n" % name)
        sys.stderr.flush()
        with open(script, encoding="utf-8") as handle:
            quick = args.quick and '"--quick"' in handle.read()
        started = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, script, *(["--quick"] if quick else [])],
                                  stdout=subprocess.PIPE, text=True, check=False)
        except KeyboardInterrupt:
            # The child got the same Ctrl-C and stops its own servers.
            sys.stderr.write("interrupted\n")
            return 130
        took = time.monotonic() - started
        status = "ok" if proc.returncode == 0 else "FAILED (exit %d)" % proc.returncode
        if proc.returncode:
            failed.append(name)
        reports.append("## %s (%s, %.0f s)\n\n%s" % (name, status, took, proc.stdout.strip()))
    print("\n\n".join(reports))
    if failed:
        print("\nFailed: %s" % ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
