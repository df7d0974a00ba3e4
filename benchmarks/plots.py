"""PNG plots of the curves behind the table (matplotlib, Agg backend: no display needed).

* ``sync_bytes_vs_k.png``: bytes shipped to a stale peer after K of N memories changed,
  memmesh against Yjs, the raw payload of the K records, and the full state;
* ``search_latency_vs_n.png``: top-10 search latency against the number of memories,
  memmesh's index against a numpy flat scan, scoped to one user and unscoped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(ax: Any, x: str, y: str, title: str) -> None:
    """Axis labels, title, a log-friendly grid and the legend of one chart."""
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _save(plt: Any, fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def sync_bytes_plot(sync: dict[str, Any], path: Path) -> None:
    """Left: bytes shipped vs K (log-log). Right: the same over the raw payload."""
    plt = _pyplot()
    curve = sync["curve"]
    ks = [p["k"] for p in curve]
    raw = [p["raw_bytes"] for p in curve]
    fig, (ax, rx) = plt.subplots(1, 2, figsize=(10, 4), dpi=80)
    ax.plot(ks, [p["memmesh_bytes"] for p in curve], "o-", label="memmesh sync_changes")
    ax.plot(ks, [p["yjs_bytes"] for p in curve], "s--", label="Yjs (pycrdt) state-vector diff")
    ax.plot(ks, raw, ":", color="grey", label="raw msgpack of the K records")
    ax.plot(ks, [p["full_state_raw_bytes"] for p in curve], "-.", color="black",
            label=f"full state (raw msgpack, all {sync['memories']:,})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _label(ax, "K memories changed since the peer's last sync", "bytes shipped",
           f"Delta sync bytes, {sync['memories']:,} memories")
    ours = [p["memmesh_bytes"] / r for p, r in zip(curve, raw, strict=True)]
    yjs = [p["yjs_bytes"] / r for p, r in zip(curve, raw, strict=True)]
    rx.plot(ks, ours, "o-", label="memmesh")
    rx.plot(ks, yjs, "s--", label="Yjs (pycrdt)")
    rx.axhline(1.0, color="grey", linestyle=":", label="raw payload")
    rx.axhline(1.2, color="red", linestyle="--", linewidth=0.8, label="target 1.2x")
    rx.set_xscale("log")
    rx.set_ylim(min(0.8, *ours, *yjs) * 0.95, max(1.4, *ours, *yjs) * 1.05)
    _label(rx, "K memories changed", "bytes shipped / raw payload of the K records",
           "Overhead over the raw payload")
    _save(plt, fig, path)


def search_latency_plot(search: list[dict[str, Any]], path: Path) -> None:
    plt = _pyplot()
    ns = [s["memories"] for s in search]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=90)
    for scope, style in (("scoped", "-"), ("unscoped", "--")):
        ax.plot(ns, [s[scope]["index_ms"] for s in search], "o" + style,
                color="tab:blue", label=f"memmesh SemanticIndex, {scope}")
        ax.plot(ns, [s[scope]["flat_scan_ms"] for s in search], "s" + style,
                color="tab:orange", label=f"numpy flat scan, {scope}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _label(ax, "memories (384-d vectors)", "top-10 latency, median ms",
           "Search latency vs N (scoped: one user of 100)")
    _save(plt, fig, path)


def write_plots(results: dict[str, Any], out: Path) -> list[Path]:
    """Both plots under ``out``; their paths."""
    paths = [out / "sync_bytes_vs_k.png", out / "search_latency_vs_n.png"]
    sync_bytes_plot(results["sync"], paths[0])
    search_latency_plot(results["search"], paths[1])
    return paths
