"""A minimal single-machine torchrun: start N ranks of a module with the
torch.distributed env:// variables torchrun sets (MASTER_ADDR/PORT, WORLD_SIZE,
RANK, LOCAL_RANK, LOCAL_WORLD_SIZE).

    python3 -m p5rec.launch --nproc 2 p5rec.train --model BASE --pairs ... --out OUT

Use torchrun where it works (`torchrun --nproc_per_node N -m p5rec.train ...`,
and for several machines); this exists because Debian 12's python3-torch 1.13
ships a torchrun that fails on Python 3.11 before starting any rank
(`'NoneType' object has no attribute 'get'` in elastic's to_map). If a rank
fails, the others are stopped and its exit status is returned.
"""
import argparse
import os
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="p5rec.launch", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nproc", type=int, required=True, help="ranks to start on this machine")
    ap.add_argument("--port", type=int, default=0, help="rendezvous port (default: a free one)")
    ap.add_argument("module", help="python module to run, e.g. p5rec.train")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    port = a.port or free_port()
    procs = []
    for r in range(a.nproc):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(a.nproc), RANK=str(r),
                   LOCAL_RANK=str(r), LOCAL_WORLD_SIZE=str(a.nproc), GROUP_RANK="0")
        env.setdefault("OMP_NUM_THREADS", "1")
        procs.append(subprocess.Popen([sys.executable, "-m", a.module, *a.args], env=env))
    rc = 0
    while procs:
        for p in list(procs):
            code = p.poll()
            if code is None:
                continue
            procs.remove(p)
            if code != 0 and rc == 0:
                rc = code
                for q in procs:  # the rest would wait for the failed rank forever
                    q.terminate()
        time.sleep(0.2)
    return rc


if __name__ == "__main__":
    sys.exit(main())
