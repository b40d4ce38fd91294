"""The plan as a table for people."""
from __future__ import annotations

GIB = 2 ** 30


def _gib(x) -> str:
    return "-" if x is None else f"{x / GIB:.2f}"


def _seconds(x) -> str:
    if x is None:
        return "-"
    return f"{x * 1e3:.2f} ms" if x < 1 else f"{x:.1f} s"


def _hours(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def table(rows: list[dict], summary: list[dict]) -> str:
    head = (f"{'target':<8} {'stage':<11} {'fits':<4} {'peak GiB':>9} {'of GiB':>7} "
            f"{'FLOPs/call':>10} {'src':<7} {'roofline':>10}  setting that fits / detail")
    lines = [head, "-" * len(head)]
    for r in rows:
        fix = r.get("setting")
        note = fix if fix else (r.get("error", "")[:60] if not r["fits"] else r.get("detail", ""))
        lines.append(
            f"{r['target']:<8} {r['stage']:<11} {'yes' if r['fits'] else 'NO':<4} "
            f"{_gib(r.get('peak_bytes_per_device')):>9} {_gib(r['device_memory_bytes']):>7} "
            f"{r.get('flops', 0) or 0:>10.3g} {r.get('flops_source', '-'):<7} "
            f"{_seconds(r.get('seconds_roofline')):>10}  {note}")
    lines += ["", f"Whole run, hours at {summary[0]['mfu']:.0%} of the roofline (MFU):",
              f"{'target':<8} {'train':>8} {'collect':>8} {'scan':>8} "
              f"{'total':>8} {'dev-h':>8} {'scan at paper':>14}"] if summary else []
    for s in summary:
        lines.append(f"{s['target']:<8} {_hours(s['train_hours']):>8} "
                     f"{_hours(s['collect_hours']):>8} {_hours(s['scan_hours']):>8} "
                     f"{_hours(s['total_hours']):>8} {_hours(s['device_hours']):>8} "
                     f"{_hours(s['scan_paper_hours']):>14}")
    return "\n".join(lines)
