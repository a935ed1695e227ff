"""Moves a share of a catalog's labels to a uniformly random other value (issue 19's check test: 5% of myntra's
labels flipped), writing the catalog and the ids flipped (FILE.flipped), for measuring `check`'s disagreement.

    python3 scripts/reference/flip_labels.py /tmp/splits/myntra-1/dev.csv /tmp/splits/myntra-1/dev-flip.csv 1 [--share 0.05] [--column category]

Seeded by the third argument (random.Random(seed)); the splits come from repeated_splits.py.
"""
import argparse
import csv
import random

ap = argparse.ArgumentParser()
ap.add_argument('src')
ap.add_argument('dst')
ap.add_argument('seed', type=int)
ap.add_argument('--share', type=float, default=0.05)
ap.add_argument('--column', default='category')
a = ap.parse_args()
rows = list(csv.DictReader(open(a.src, encoding='utf-8')))
classes = sorted(set(r[a.column] for r in rows))
rng = random.Random(a.seed)
flipped = []
for i in rng.sample(range(len(rows)), round(a.share * len(rows))):
    r = rows[i]
    r[a.column] = rng.choice([c for c in classes if c != r[a.column]])
    flipped.append(r['id'])
with open(a.dst, 'w', encoding='utf-8', newline='') as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)
open(a.dst + '.flipped', 'w').write('\n'.join(flipped))
