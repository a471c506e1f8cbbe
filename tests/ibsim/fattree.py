#!/usr/bin/env python3
"""Writes a two-level fat tree of 36-port switches in ibnetdiscover format,
as ibsim reads it (see the test bed's fabric.topo for the conventions):
    tests/ibsim/fattree.py HCAS > fabric.topo
HCAS is a multiple of 18. Each leaf has 18 HCAs below and 18 uplinks; the
uplinks go to 18/k spines, k parallel links from each leaf to each spine,
k the largest divisor of 18 that fits every leaf on a spine's 36 ports
(18 HCAs: one switch, no spine; 162: 9 leaves, 6 spines, 3 links each;
648: 36 leaves, 18 spines, 1 link each). HCAs are node001..., one port
each; LIDs are preset (switches first), links are 4xEDR."""
import sys

PORTS, DOWN = 36, 18


def main():
    hcas = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if hcas <= 0 or hcas % DOWN:
        sys.exit("usage: fattree.py HCAS (a multiple of 18, at most 648)")
    leaves = hcas // DOWN
    if leaves == 1:
        k, spines = 0, 0
    else:
        k = max(d for d in (1, 2, 3, 6, 9, 18) if leaves * d <= PORTS) if leaves <= PORTS else sys.exit("at most 648 HCAs")
        spines = DOWN // k
    switches = leaves + spines
    lid = {}
    for i in range(leaves):
        lid[f"leaf{i + 1:02d}"] = i + 1
    for j in range(spines):
        lid[f"spine{j + 1:02d}"] = leaves + j + 1
    for h in range(hcas):
        lid[f"node{h + 1:03d}"] = switches + h + 1
    desc = {n: (f"MF0;{n}:MQM8700/U1" if not n.startswith("node") else f"{n} HCA-1") for n in lid}

    def sw_guid(n):
        return 0x248a070300000000 + (lid[n] << 8)

    def ca_guid(n):
        return 0x0c42a10300000000 + (lid[n] << 8)

    links = {n: {} for n in lid}  # node -> port -> (peer, peer port)

    def connect(a, pa, b, pb):
        links[a][pa] = (b, pb)
        links[b][pb] = (a, pa)

    for i in range(leaves):
        leaf = f"leaf{i + 1:02d}"
        for p in range(DOWN):
            connect(leaf, p + 1, f"node{i * DOWN + p + 1:03d}", 1)
        for j in range(spines):
            for m in range(k):
                connect(leaf, DOWN + j * k + m + 1, f"spine{j + 1:02d}", i * k + m + 1)
    print(f"# Two-level fat tree: {leaves} leaf and {spines} spine switches of {PORTS} ports, "
          f"{hcas} HCAs (tests/ibsim/fattree.py {hcas}).")
    for n in lid:
        if n.startswith("node"):
            continue
        g = sw_guid(n)
        print(f"\nvendid=0x2c9\ndevid=0xd2f0\nsysimgguid={g:#018x}\nswitchguid={g:#018x}")
        print(f'Switch\t{PORTS} "{n}"\t\t# "{desc[n]}" enhanced port 0 lid {lid[n]} lmc 0')
        for p in sorted(links[n]):
            peer, pp = links[n][p]
            print(f'[{p}]\t"{peer}"[{pp}]\t\t# "{desc[peer]}" lid {lid[peer]} 4xEDR')
    for n in lid:
        if not n.startswith("node"):
            continue
        g = ca_guid(n)
        peer, pp = links[n][1]
        print(f"\nvendid=0x2c9\ndevid=0x1017\nsysimgguid={g:#018x}\ncaguid={g:#018x}")
        print(f'Ca\t1 "{n}"\t\t# "{desc[n]}"')
        print(f'[1]({g + 1:x})\t"{peer}"[{pp}]\t\t# lid {lid[n]} lmc 0 "{desc[peer]}" lid {lid[peer]} 4xEDR')


main()
