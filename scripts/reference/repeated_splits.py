"""Seeded stratified 80/20 splits of a catalog's train + dev pooled, for repeated-split measurements (README, "Repeated splits").

    OPENBLAS_CORETYPE=Haswell python3 scripts/reference/repeated_splits.py myntra-fashion 1 /tmp/splits/myntra-1 [--blank-titles 0.3]

Writes OUT/train.csv and OUT/dev.csv (image paths made absolute); classes with a single row go to train. With
--blank-titles S also OUT/dev-blank.csv: the same dev rows with a seeded share S of titles and descriptions emptied.
Reads ../shared/data/<catalog>; a reference script, never a runtime dependency.
"""
import argparse, csv, os, random
from collections import Counter
from sklearn.model_selection import StratifiedShuffleSplit

ap = argparse.ArgumentParser()
ap.add_argument('catalog'); ap.add_argument('seed', type=int); ap.add_argument('out')
ap.add_argument('--label-column', default='category'); ap.add_argument('--blank-titles', type=float, default=0.0)
ap.add_argument('--data', default=os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared', 'data'))
a = ap.parse_args()
d = os.path.join(os.path.abspath(a.data), a.catalog)
rows = []
for f in ['train.csv', 'dev.csv']:
    rows += list(csv.DictReader(open(os.path.join(d, f), encoding='utf-8', newline='')))
fields = list(rows[0].keys())
y = [r[a.label_column] for r in rows]
count = Counter(y)
idx = [i for i in range(len(rows)) if count[y[i]] >= 2]
single = [i for i in range(len(rows)) if count[y[i]] < 2]
tr, te = next(StratifiedShuffleSplit(n_splits=1, test_size=0.2, random_state=a.seed).split(idx, [y[i] for i in idx]))
parts = {'train.csv': [idx[i] for i in tr] + single, 'dev.csv': [idx[i] for i in te]}
os.makedirs(a.out, exist_ok=True)
def write(name, rs):
    with open(os.path.join(a.out, name), 'w', encoding='utf-8', newline='') as fh:
        w = csv.DictWriter(fh, fieldnames=fields); w.writeheader(); w.writerows(rs)
for name, ii in parts.items():
    rs = [dict(rows[i]) for i in sorted(ii)]
    for r in rs:
        if r.get('image'): r['image'] = os.path.join(d, r['image'])
    write(name, rs)
    if name == 'dev.csv' and a.blank_titles > 0:
        rng = random.Random(a.seed); order = list(range(len(rs))); rng.shuffle(order)
        blank = [dict(r) for r in rs]
        for i in order[: int(round(a.blank_titles * len(rs)))]: blank[i]['title'] = ''; blank[i]['description'] = ''
        write('dev-blank.csv', blank)
