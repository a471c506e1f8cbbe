#!/usr/bin/env python3
"""Checks what tests/vm/top-guest.sh wrote in the rxe VM:
1. local `top --batch --detail`: every counter of rxe0/1 shows the value
   `rdma statistic` shows after the burst, and rate × interval equals its
   delta over the burst within the rounding of the printed rate and interval;
2. the same for `top --url --batch --detail` through the agent's /snapshot,
   and for the interactive `top --url` in tmux: its detail pane's rates
   (human units) × its interval = the deltas, `q` exits 0, and the terminal
   is back in canonical mode with echo;
3. `top --batch 1 --view consumers`: each process holding a user QP in
   `rdma res show qp` is in the row of its Slurm job / pod, with its QPs per
   device/port."""
import json, re, sys

d = sys.argv[1]
UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}


def load_stat(name):
    s = json.load(open(f"{d}/{name}"))[0]
    return {k: v for k, v in s.items() if k not in ("ifname", "port")}


def interval_of(text, what):
    m = re.search(r"rates over ([0-9.]+)s", text)
    assert m, f"{what}: no 'rates over' in its frame:\n{text}"
    return float(m.group(1))


def check_rates(what, before, after, rates, interval, rate_slack):
    """rates: name -> rate; rate_slack: name -> how far the true rate may be
    from the printed one. The interval is printed to 0.01 s."""
    assert set(after) <= set(rates), f"{what}: lacks {sorted(set(after) - set(rates))}"
    for k in after:
        delta = after[k] - before[k]
        rate = rates[k]
        slack = rate_slack[k] * interval + rate * 0.005 + 0.5
        assert abs(rate * interval - delta) <= slack, \
            f"{what}: {k}: {rate}/s × {interval} s = {rate * interval:.1f} ≠ rdma statistic delta {delta}"
    assert after["sent_pkts"] - before["sent_pkts"] > 100, f"{what}: the burst did not run"
    return sum(after[k] > before[k] for k in after)


def check_batch(what, stat_before, stat_after, top_file):
    before, after = load_stat(stat_before), load_stat(stat_after)
    text = open(f"{d}/{top_file}").read()
    interval = interval_of(text, what)
    section = text.split("rxe0/1 ")[1].split("\nrxe1/1")[0]
    shown = {m.group(1): (int(m.group(2)), float(m.group(3)))
             for m in re.finditer(r"^\s+(\w+)\s+(\d+)\s+([0-9.]+)/s$", section, re.M)}
    for k in after:
        assert k in shown, f"{what}: lacks {k}"
        assert shown[k][0] == after[k], f"{what}: {k}: top shows {shown[k][0]}, rdma statistic {after[k]}"
    # printed to 0.01/s
    moved = check_rates(what, before, after, {k: v[1] for k, v in shown.items()}, interval,
                        {k: 0.005 for k in shown})
    delta = after["sent_pkts"] - before["sent_pkts"]
    print(f"{what}: {len(after)} counters of rxe0/1, {moved} moved; value = rdma statistic, "
          f"rate × {interval} s = its delta (sent_pkts {delta} = {shown['sent_pkts'][1]}/s × {interval} s)")


def human_slack(text):
    """Half a unit of the last printed digit of a human() number."""
    m = re.fullmatch(r"([0-9]+)(?:\.([0-9]+))?([kMGTP]?)", text)
    decimals = len(m.group(2) or "")
    return 0.5 * 10 ** -decimals * UNITS[m.group(3)]


def check_interactive():
    what = "top --url in tmux (interactive)"
    before, after = load_stat("u_before.json"), load_stat("u_after.json")
    screen = open(f"{d}/url-int.txt").read()
    interval = interval_of(screen, what)
    lines = screen.splitlines()
    title = [i for i, l in enumerate(lines) if "rxe0/1" in l and "every counter" in l]
    assert title, f"{what}: no detail pane of rxe0/1 on the screen:\n{screen}"
    pane = []
    for l in lines[title[0] + 1:]:
        if "Findings" in l:
            break
        pane.append(l)
    rates, slack = {}, {}
    for m in re.finditer(r"(\w+)\s+([0-9.]+[kMGTP]?)/s", "\n".join(pane)):
        name, txt = m.group(1), m.group(2)
        num = re.fullmatch(r"([0-9.]+)([kMGTP]?)", txt)
        rates[name] = float(num.group(1)) * UNITS[num.group(2)]
        slack[name] = human_slack(txt)
    missing = sorted(set(after) - set(rates))
    assert not missing, f"{what}: its detail pane lacks {missing}:\n{screen}"
    check_rates(what, before, after, rates, interval, slack)
    rc = open(f"{d}/url-int.rc").read().strip()
    assert rc == "exit 0", f"{what}: q gave {rc!r}"
    stty = open(f"{d}/url-int.stty").read().split()
    assert "icanon" in stty and "echo" in stty, f"{what}: terminal not restored: {stty}"
    sent = next(l for l in pane if "sent_pkts" in l)
    print(f"{what}: 120×36, its detail pane of rxe0/1 shows all {len(after)} counters, "
          f"rate × {interval} s = rdma statistic delta for each "
          f"(sent_pkts {after['sent_pkts'] - before['sent_pkts']}: "
          f"{re.search(r'sent_pkts +([^ ]+/s)', sent).group(1)}); q: exit 0, terminal restored")


def check_consumers():
    what = "top --view consumers"
    text = open(f"{d}/consumers.txt").read()
    res = json.load(open(f"{d}/c-res-qp.json"))
    held = {}  # pid -> {"rxe1/1": n}
    for q in res:
        if q.get("pid") and q.get("comm") != "[kernel]":
            key = f"{q['ifname']}/{q['port']}" if "port" in q else q["ifname"]
            held.setdefault(q["pid"], {}).setdefault(key, 0)
            held[q["pid"]][key] += 1
    cgroups = dict(l.split("\t", 1) for l in open(f"{d}/c-cgroups.txt").read().splitlines())
    assert len(held) == 2, f"{what}: expected the pingpong server and client in rdma res, got {held}"
    rows = [l for l in text.splitlines() if "ibv_rc_pingpong" in l]
    expect_kind = {"slurmstepd": ("slurm_job", "4242"), "kubepods": ("pod", "trainer-0")}
    for pid, ports in held.items():
        row = [l for l in rows if re.search(rf"\b{pid} ibv_rc_pingpong", l)]
        assert len(row) == 1, f"{what}: pid {pid} ({ports}) in {len(row)} rows:\n{text}"
        for port, n in ports.items():
            assert f"{port}:{n}" in row[0].split(), f"{what}: pid {pid}: {port}:{n} not in {row[0]!r}"
        kind, job = next(v for k, v in expect_kind.items() if k in cgroups[str(pid)])
        assert row[0].split()[0] == kind, f"{what}: pid {pid} in {cgroups[str(pid)]}: {row[0]!r}"
        assert job in row[0], f"{what}: pid {pid}: {job} not in {row[0]!r}"
    print(f"{what}: both QP holders of rdma res show qp in their rows "
          + "; ".join(f"pid {p} {' '.join(f'{k}:{n}' for k, n in v.items())}" for p, v in held.items()))


check_batch("top --batch (local)", "s_before.json", "s_after.json", "top.txt")
check_batch("top --url --batch", "u_before.json", "u_after.json", "url.txt")
check_interactive()
check_consumers()
