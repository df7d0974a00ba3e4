"""PNG plots drawn from a report (matplotlib, Agg backend: no display needed).

Everything is drawn from ``report.json`` alone, so a plot can be redrawn from a saved
report: ``convergence.png`` (fraction of nodes agreeing per round, and for ``spread``
the fraction holding the write against the epidemic bound), ``bytes_per_round.png``,
``staleness.png`` (histogram per memory class, when the scenario reads) and
``metadata_vs_n.png`` (``fleet``: summary size and bytes per node against N).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_plots(report: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    title = f"{report['scenario']} (N={report['nodes']}, seed={report['seed']})"
    series = report.get("series", {})

    def save(fig: Any, name: str) -> None:
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=110, metadata={"Software": None})
        plt.close(fig)
        written.append(path)

    # convergence curve
    fig, ax = plt.subplots(figsize=(6.4, 4))
    agreeing = series.get("agreeing_fraction", [])
    spread = report.get("spread")
    offset = spread.get("write_round", 0) if spread else 0
    xs = [i - offset for i in range(len(agreeing))]
    ax.plot(xs, agreeing, marker=".", label="nodes at the most common digest")
    if spread and spread.get("arrival_curve"):
        curve = spread["arrival_curve"]
        ax.plot(range(len(curve)), curve, marker="o", label="nodes holding the write")
        ax.axvline(spread["epidemic_bound_rounds"], color="grey", linestyle="--",
                   label="log2 N + ln ln N")
        ax.set_xlabel("rounds after the write")
    else:
        ax.set_xlabel("round")
    ax.set_ylabel("fraction of live nodes")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"convergence: {title}")
    ax.legend(loc="lower right")
    save(fig, "convergence.png")

    # bytes per round
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(series.get("bytes_per_node", []), label="protocol bytes / node")
    ax.plot(series.get("wire_bytes_per_node", []), label="wire bytes / node", alpha=0.7)
    ax.set_xlabel("round")
    ax.set_ylabel("bytes sent per node")
    ax.set_title(f"bytes per round: {title}")
    ax.legend()
    save(fig, "bytes_per_round.png")

    # staleness histogram
    hist = report.get("staleness_histogram", {})
    counts = hist.get("counts", {})
    if counts:
        bins = hist["bins_ms"]
        labels = [f"<={b}" for b in bins] + [f">{bins[-1]}"]
        fig, ax = plt.subplots(figsize=(7.5, 4))
        width = 0.8 / max(1, len(counts))
        for k, (klass, values) in enumerate(sorted(counts.items())):
            xs = [i + k * width for i in range(len(values))]
            ax.bar(xs, values, width=width, label=klass)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))])
        ax.set_xticklabels(labels, rotation=45, ha="right")
        ax.set_xlabel("staleness of a read (ms)")
        ax.set_ylabel("reads")
        ax.set_title(f"read staleness: {title}")
        ax.legend()
        save(fig, "staleness.png")

    # metadata size vs N
    fleet = report.get("fleet")
    if fleet and fleet.get("per_size"):
        rows = fleet["per_size"]
        ns = [r["nodes"] for r in rows]
        fig, ax = plt.subplots(figsize=(6.4, 4))
        ax.plot(ns, [r["summary_bytes_mean"] for r in rows], marker="o",
                label="summary bytes (mean)")
        ax.plot(ns, [r["summary_bytes_max"] for r in rows], marker="^",
                label="summary bytes (max)")
        ax.plot(ns, [r["bytes_per_node"] for r in rows], marker="s",
                label="protocol bytes / node / round")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("fleet size N")
        ax.set_ylabel("bytes")
        ax.set_title(f"metadata vs N ({fleet['users']} users, scoped ACLs)")
        ax.legend()
        save(fig, "metadata_vs_n.png")

    # summary size as members come and go (scenario retire)
    retire = report.get("retire")
    if retire and retire.get("samples"):
        rows = retire["samples"]
        xs = [r["members_ever"] for r in rows]
        fig, ax = plt.subplots(figsize=(6.4, 4))
        ax.plot(xs, [r["summary_bytes_without_retirement"] for r in rows], marker=".",
                label="without retirement")
        ax.plot(xs, [r["summary_bytes"] for r in rows], marker=".", label="with retirement")
        ax.plot(xs, [24 * r["live"] + 256 for r in rows], linestyle="--",
                label="24 B per live member + 256 B")
        ax.set_xlabel("members that ever lived")
        ax.set_ylabel("a long-lived member's summary (bytes)")
        ax.set_title(f"summary size as members come and go ({retire['long_lived']} stay)")
        ax.legend()
        save(fig, "summary_vs_members.png")
    return written


def fleet_curves(reports: list[dict[str, Any]], out: Path,
                 spread_rounds: dict[int, float] | None = None) -> Path:
    """``fleet_curves.png``: rounds to converge and bytes per node against N, one line
    per ``fleet`` report (each a ``--users`` count), beside the targets of issue 17:
    2x the unscoped ``spread`` rounds of the same N (``spread_rounds``, when given) and
    2x the bytes each node's scope needs (against the payloads carrying data; all bytes,
    summaries and empty answers included, dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for k, report in enumerate(reports):
        fleet = report["fleet"]
        rows = fleet["per_size"]
        ns = [r["nodes"] for r in rows]
        label, color = f"{fleet['users']} users", f"C{k}"
        left.plot(ns, [r["rounds_to_converge"] for r in rows], marker="o", color=color,
                  label=label)
        right.plot(ns, [r["data_bytes_per_node"] / 1024 for r in rows], marker="o",
                   color=color, label=f"{label}: data payloads")
        right.plot(ns, [r["bytes_total_per_node"] / 1024 for r in rows], marker=".",
                   color=color, linestyle=":", label=f"{label}: all (+ summaries, empty answers)")
        right.plot(ns, [2 * r["scope_bytes_per_node"] / 1024 for r in rows],
                   color=color, linestyle="--", label=f"{label}: 2x what its scope needs")
    if spread_rounds:
        ns = sorted(spread_rounds)
        left.plot(ns, [2 * spread_rounds[n] for n in ns], color="grey", linestyle="--",
                  label="2x unscoped spread rounds")
    left.set_xscale("log")
    left.set_xlabel("fleet size N")
    left.set_ylabel("rounds to converge after the last write")
    left.set_title("scoped fleet: rounds")
    left.legend()
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("fleet size N")
    right.set_ylabel("KiB per node (whole run)")
    right.set_title("scoped fleet: bytes per node")
    right.legend(fontsize="small")
    fig.tight_layout()
    path = out / "fleet_curves.png"
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    """``python -m memmesh.simulations.plots OUT FLEET_REPORT... [--spread N=ROUNDS,...]``:
    draw :func:`fleet_curves` from saved ``fleet`` reports."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--spread", default="", help="unscoped spread rounds: N=R,...")
    args = parser.parse_args(argv)
    spread = {int(n): float(r) for n, r in
              (item.split("=") for item in args.spread.split(",") if item)}
    reports = [json.loads(p.read_text()) for p in args.reports]
    print(fleet_curves(reports, args.out, spread or None))


if __name__ == "__main__":
    main()
