#!/usr/bin/python3
# report.py - turn bench/run.sh's raw measurements into the results.
#
#   report.py OUT      (OUT is bench/out)
#
# Reads OUT/raw.csv (one line per timed run), OUT/corpus/images.json (the images' bytes)
# and OUT/meta.txt (machine, versions, passes). Prints the machine, the table and the
# targets, and writes the same to OUT/results.csv and OUT/results.md, and a chart of the
# ratios to OUT/ratios.png (gnuplot). Medians over the passes for wall and CPU seconds;
# peak RSS is the largest of the passes. Targets are reported, never asserted.
#
# The floor of a row (bench/README.md, "The floor") is the largest of: the single-stream
# floor (igzip -dc of its largest layer alone, wall seconds), the CPU floor (the CPU seconds
# of igzip -dc, SHA-256 of the gz and SHA-256 of the tar of its distinct layers, summed and
# divided by the cores) and the durable write (dd conv=fsync of as many bytes as our command
# wrote, wall seconds).
import csv
import json
import os
import statistics
import subprocess
import sys

IMAGES = ["realistic", "big", "many", "shared-1"]
TOOLS = ["occystrap", "skopeo", "limit-pipe", "stream", "igzip", "sha-gz", "sha-tar", "dd", "floor"]
MIRROR_TOOLS = ["occystrap", "occystrap-no-exact", "skopeo", "stream", "igzip", "sha-gz", "sha-tar",
                "dd", "floor"]
FLOOR_CPU_TOOLS = ("igzip", "sha-gz", "sha-tar")
TARGETS = [
    # (label, image, key, op, bound)
    ("ours/floor <= 1.15 on realistic", "realistic", "ours_over_floor", "<=", 1.15),
    ("ours/floor <= 1.15 on big", "big", "ours_over_floor", "<=", 1.15),
    ("ours/skopeo <= 0.25 on realistic", "realistic", "ours_over_skopeo", "<=", 0.25),
    ("ours/skopeo <= 0.25 on big", "big", "ours_over_skopeo", "<=", 0.25),
    ("mirror (exact bytes) <= 1.25x its floor", "mirror", "ours_over_floor", "<=", 1.25),
    ("peak RSS <= 32 MB on big", "big", "peak_rss_MB", "<=", 32.0),
    ("many under 0.5 s", "many", "wall_s", "<", 0.5),
    ("expand <= 0.25x umoci unpack (ours/skopeo column)", "expand", "ours_over_skopeo", "<=", 0.25),
    ("mirror (exact bytes) <= 1.0x skopeo sync --dest dir", "mirror", "ours_over_skopeo", "<=", 1.0),
    ("mirror peak RSS <= 64 MB", "mirror", "peak_rss_MB", "<=", 64.0),
]
COLS = [  # (csv name, table header, format)
    ("image", "image", "{}"),
    ("tool", "tool", "{}"),
    ("wall_s", "wall s", "{:.2f}"),
    ("cpu_s", "cpu s", "{:.2f}"),
    ("gz_MBps", "gz MB/s", "{:.0f}"),
    ("tar_MBps", "tar MB/s", "{:.0f}"),
    ("peak_rss_MB", "peak RSS MB", "{:.1f}"),
    ("written_MB", "written MB", "{:.0f}"),
    ("ours_over_skopeo", "ours/skopeo", "{:.2f}"),
    ("ours_over_limit_pipe", "ours/limit-pipe", "{:.2f}"),
    ("ours_over_floor", "ours/floor", "{:.2f}"),
]


def load_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    return meta


def summarise(out, meta):
    images = json.load(open(os.path.join(out, "corpus", "images.json")))
    runs = {}
    with open(os.path.join(out, "raw.csv")) as f:
        for r in csv.DictReader(f):
            runs.setdefault((r["image"], r["tool"]), []).append(r)
    if any(im == "mirror" for im, _ in runs) and "mirror" not in IMAGES:
        # the mirror row: shared-1..3, big and many in one run; sizes of the distinct layers
        seen = {}
        for name in ("shared-1", "shared-2", "shared-3", "big", "many"):
            for l in images[name]["layers"]:
                seen[l["digest"]] = l
        images["mirror"] = {
            "layers": list(seen.values()), "repo": "shared:1-3 + big + many", "tag": "mirror",
            "gz_bytes": sum(l["size"] for l in seen.values()),
            "tar_bytes": sum(l.get("tar_size", 0) for l in seen.values())}
        IMAGES.append("mirror")
    if any(im == "expand" for im, _ in runs) and "expand" not in IMAGES:
        # the expand row: the realistic image's merged rootfs, ours against umoci unpack
        images["expand"] = dict(images["realistic"], tag="expand")
        IMAGES.append("expand")
    rows = []
    for im in IMAGES:
        info = images[im]
        gz_mb, tar_mb = info["gz_bytes"] / 1e6, info["tar_bytes"] / 1e6
        tools = TOOLS
        if im == "expand":
            tools = ["occystrap", "umoci"]
        elif im == "mirror":
            tools = MIRROR_TOOLS
        for tool in tools:
            if tool == "floor":
                rows.append({"image": im, "tool": "floor", "reps": 0, "reps_ok": 0,
                             "timeouts": 0, "layers": len(info["layers"]), "gz_MB": gz_mb,
                             "tar_MB": tar_mb})
                continue
            rs = runs.get((im, tool), [])
            ok = [r for r in rs if r["rc"] == "0" and r["wall_s"]]
            row = {"image": im, "tool": tool, "reps": len(rs), "reps_ok": len(ok),
                   "timeouts": sum(1 for r in rs if r["rc"] == "124"),
                   "layers": len(info["layers"]), "gz_MB": gz_mb, "tar_MB": tar_mb}
            if ok:
                wall = statistics.median(float(r["wall_s"]) for r in ok)
                row["wall_s"] = wall
                row["cpu_s"] = statistics.median(float(r["user_s"]) + float(r["sys_s"])
                                                 for r in ok)
                row["gz_MBps"] = gz_mb / wall if wall > 0 else None
                row["tar_MBps"] = tar_mb / wall if wall > 0 else None
                row["peak_rss_MB"] = max(int(r["maxrss_kb"]) for r in ok) / 1024
                written = [int(r["bytes"]) for r in ok if r.get("bytes")]
                if written:
                    row["written_MB"] = statistics.median(written) / 1e6
            rows.append(row)
    by = {(r["image"], r["tool"]): r for r in rows}
    nproc = int(meta.get("nproc") or os.cpu_count() or 1)
    for im in IMAGES:
        if (im, "floor") in by:
            floor_row(by, im, nproc)
        ours = by[(im, "occystrap")]
        if im == "expand":
            ours["tool"] = "occystrap expand"
            u = by[(im, "umoci")]
            u["tool"] = "umoci unpack"
            if ours.get("wall_s") and u.get("wall_s"):
                ours["ours_over_skopeo"] = ours["wall_s"] / u["wall_s"]
            continue
        if im == "mirror":
            ours["tool"] = "occystrap mirror (exact bytes)"
            by[(im, "occystrap-no-exact")]["tool"] = "occystrap mirror --no-exact"
            by[(im, "skopeo")]["tool"] = "skopeo sync --dest dir"
            o, f = by[(im, "skopeo")], by.get((im, "floor"), {})
            for mine in (ours, by[(im, "occystrap-no-exact")]):
                if mine.get("wall_s") and o.get("wall_s"):
                    mine["ours_over_skopeo"] = mine["wall_s"] / o["wall_s"]
                if mine.get("wall_s") and f.get("wall_s"):
                    mine["ours_over_floor"] = mine["wall_s"] / f["wall_s"]
            continue
        for other, key in (("skopeo", "ours_over_skopeo"), ("limit-pipe", "ours_over_limit_pipe"),
                           ("floor", "ours_over_floor")):
            o = by.get((im, other), {})
            if ours.get("wall_s") and o.get("wall_s"):
                ours[key] = ours["wall_s"] / o["wall_s"]
    return rows, by, images


def floor_row(by, im, nproc):
    """The floor of a row: the largest of the single-stream floor, the CPU floor and the
    durable write; the row says which one it is."""
    f = by[(im, "floor")]
    parts = {}
    stream = by.get((im, "stream"), {}).get("wall_s")
    if stream is not None:
        parts["stream"] = stream
    cpu = [by.get((im, t), {}).get("cpu_s") for t in FLOOR_CPU_TOOLS]
    if all(c is not None for c in cpu):
        parts["cpu"] = sum(cpu) / nproc
        f["cpu_s"] = sum(cpu)
    dd = by.get((im, "dd"), {}).get("wall_s")
    if dd is not None:
        parts["disk"] = dd
    if len(parts) == 3:  # a floor with a part missing would be too low: say nothing
        which = max(parts, key=parts.get)
        f["wall_s"] = parts[which]
        f["reps"] = f["reps_ok"] = 1
        f["tool"] = f"floor ({which})"
        f["floor_stream_s"], f["floor_cpu_s"], f["floor_disk_s"] = (
            parts["stream"], parts["cpu"], parts["disk"])
        if f["wall_s"] > 0:
            f["gz_MBps"] = f["gz_MB"] / f["wall_s"]
            f["tar_MBps"] = f["tar_MB"] / f["wall_s"]


def cell(row, name, fmt):
    v = row.get(name)
    if name in ("image", "tool"):
        return str(v)
    if row["tool"].startswith("floor") and name == "wall_s" and v is None:
        return "-"
    if name == "wall_s" and row["reps_ok"] < row["reps"]:
        why = "timed out" if row["timeouts"] else "failed"
        if row["reps_ok"] == 0:
            return "TIMED OUT" if row["timeouts"] else "FAILED"
        return fmt.format(v) + f" ({row['reps'] - row['reps_ok']} {why})"
    if v is None:
        return "-"
    return fmt.format(v)


def targets(by):
    out = []
    for label, im, key, op, bound in TARGETS:
        v = by.get((im, "occystrap"), {}).get(key)
        if v is None:
            out.append((label, None, "not measured"))
            continue
        met = v <= bound if op == "<=" else v < bound
        unit = " s" if key == "wall_s" else (" MB" if key == "peak_rss_MB" else "")
        if met:
            verdict = "met"
        else:
            verdict = f"missed by {(v / bound - 1) * 100:.0f}%"
        out.append((label, f"{v:.2f}{unit}", verdict))
    return out


def machine_lines(meta):
    return [
        f"machine: {meta.get('nproc', '?')} CPUs, {meta.get('cpu', '?')}, {meta.get('mem', '?')}, "
        f"Linux {meta.get('kernel', '?')}",
        f"versions: {meta.get('occystrap', '?')}; {meta.get('skopeo', '?')}; "
        f"{meta.get('igzip', '?')}; {meta.get('openssl', '?')}",
        f"method: loopback lab registry (plain HTTP, Docker schema 2), warm page cache, "
        f"{'one warm-up pass, ' if meta.get('warmup') == '1' else 'no warm-up pass, '}"
        f"median of {meta.get('reps', '?')} pass{'' if meta.get('reps') == '1' else 'es'}; "
        f"load average before "
        f"{meta.get('load_before', '?')}, after {meta.get('load_after', '?')}; {meta.get('date', '')}",
    ]


def image_lines(images):
    out = []
    for im in IMAGES:
        i = images[im]
        n = len(i["layers"])
        out.append(f"{im}: {n} layer{'s' if n != 1 else ''}, {i['gz_bytes'] / 1e6:.1f} MB gzip, "
                   f"{i['tar_bytes'] / 1e6:.1f} MB tar ({i['repo']}:{i['tag']})")
    return out


def text_table(rows):
    heads = [h for _, h, _ in COLS]
    cells = [[cell(r, n, f) for n, _, f in COLS] for r in rows]
    w = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    line = lambda cs: "  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i])
                                for i, c in enumerate(cs))
    out = [line(heads), "  ".join("-" * x for x in w)]
    prev = None
    for r, c in zip(rows, cells):
        if prev is not None and r["image"] != prev:
            out.append("")
        prev = r["image"]
        out.append(line(c))
    return out


def md_table(rows):
    heads = [h for _, h, _ in COLS]
    out = ["| " + " | ".join(heads) + " |",
           "|" + "|".join("---" if i < 2 else "---:" for i in range(len(heads))) + "|"]
    for r in rows:
        cs = [cell(r, n, f) for n, _, f in COLS]
        if r["tool"] == "occystrap":
            cs = [f"**{c}**" if c not in ("-", "") else c for c in cs]
        out.append("| " + " | ".join(cs) + " |")
    return out


def write_csv(path, rows):
    names = ["image", "tool", "reps", "reps_ok", "layers", "gz_MB", "tar_MB", "wall_s", "cpu_s",
             "gz_MBps", "tar_MBps", "peak_rss_MB", "written_MB", "ours_over_skopeo",
             "ours_over_limit_pipe", "ours_over_floor", "floor_stream_s", "floor_cpu_s",
             "floor_disk_s"]
    with open(path + ".tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for r in rows:
            vals = []
            for n in names:
                v = r.get(n)
                if isinstance(v, float):
                    v = f"{v:.4f}"
                vals.append("" if v is None else v)
            w.writerow(vals)
    os.replace(path + ".tmp", path)


def chart(out, by, meta):
    dat = os.path.join(out, "ratios.dat")
    with open(dat, "w") as f:
        f.write("# image ours/skopeo ours/floor\n")
        for im in IMAGES:
            o = by[(im, "occystrap")]
            f.write(f"{im} " + " ".join(
                f"{o[k]:.4f}" if o.get(k) is not None else "?"
                for k in ("ours_over_skopeo", "ours_over_floor")) + "\n")
    gp = os.path.join(out, "ratios.gp")
    title = (f"occystrap wall time / other tool's (lower is better); "
             f"{meta.get('nproc', '?')} CPUs, median of {meta.get('reps', '?')}")
    with open(gp, "w") as f:
        f.write(f"""# ratios.gp - written by bench/report.py; gnuplot ratios.gp makes ratios.png
set terminal pngcairo size 900,520 font "sans,10"
set output "{os.path.join(out, 'ratios.png')}"
set datafile missing "?"
set title "{title}"
set ylabel "ratio of wall seconds"
set yrange [0:*]
set xrange [-0.6:{len(IMAGES) - 0.4}]
set style fill solid 0.8 border -1
set boxwidth 0.38
set grid ytics
set key below
set offsets 0, 0, graph 0.1, 0
plot "{dat}" using 0:(1/0):xtic(1) notitle, \\
     "" using ($0-0.2):2 with boxes lc rgb "#5dade2" title "ours / skopeo", \\
     "" using ($0+0.2):3 with boxes lc rgb "#f5b041" title "ours / floor", \\
     "" using ($0-0.2):2:(sprintf("%.2f",$2)) with labels offset 0,0.7 notitle, \\
     "" using ($0+0.2):3:(sprintf("%.2f",$3)) with labels offset 0,0.7 notitle, \\
     0.25 with lines dt 3 lw 2 lc rgb "#2471a3" title "target ours/skopeo <= 0.25", \\
     1.15 with lines dt 2 lw 2 lc rgb "#c0392b" title "target ours/floor <= 1.15 (mirror: 1.25, and 1.0x skopeo sync)"
""")
    r = subprocess.run(["gnuplot", gp], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        print("report: WARNING: gnuplot failed:\n" + r.stdout.decode(errors="replace"),
              file=sys.stderr)


def main():
    if len(sys.argv) != 2:
        print("usage: report.py OUT", file=sys.stderr)
        sys.exit(2)
    out = sys.argv[1]
    meta = load_meta(os.path.join(out, "meta.txt"))
    rows, by, images = summarise(out, meta)
    tg = targets(by)

    print()
    for l in machine_lines(meta):
        print(l)
    for l in image_lines(images):
        print("  " + l)
    print()
    for l in text_table(rows):
        print(l)
    print()
    print("targets (reported, not asserted):")
    for label, v, verdict in tg:
        print(f"  {label:40s} {v or '-':>10s}  {verdict}")
    print()

    write_csv(os.path.join(out, "results.csv"), rows)
    md = ["# occystrap benchmark results", "",
          "Written by `bash bench/run.sh`; the columns are explained in `bench/README.md`.", ""]
    md += [f"- {l}" for l in machine_lines(meta)]
    md += ["- images: " + "; ".join(image_lines(images)), ""]
    md += md_table(rows)
    md += ["", "Targets (reported, not asserted):", "",
           "| target | measured | verdict |", "|---|---:|---|"]
    md += [f"| {label} | {v or '-'} | {verdict} |" for label, v, verdict in tg]
    with open(os.path.join(out, "results.md.tmp"), "w") as f:
        f.write("\n".join(md) + "\n")
    os.replace(os.path.join(out, "results.md.tmp"), os.path.join(out, "results.md"))
    chart(out, by, meta)


if __name__ == "__main__":
    main()
