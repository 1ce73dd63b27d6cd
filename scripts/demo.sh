#!/usr/bin/env bash
# The README's demo: install into .venv, label the bundled sample corpus, show one parsed report graph,
# and train + evaluate a tiny image classifier on the bundled NIH ChestX-ray14 sample.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
out=demo_output
mkdir -p "$out"
sample=$(.venv/bin/python -c 'import radlabel; print(radlabel.data_path("sample_reports.csv"))')

echo "== radlabel: label the bundled sample corpus (CheXpert schema) -> $out/labels.csv"
.venv/bin/radlabel label "$sample" -o "$out/labels.csv" --id-column id --text-column report \
  --graphs "$out/graphs.jsonl" --no-progress
.venv/bin/python - "$out/labels.csv" <<'PY'
import sys, pandas as pd
df = pd.read_csv(sys.argv[1])
print(df.head(8).to_string(index=False))
print(f"... {len(df)} reports labelled; prevalence of positives:")
print((df.drop(columns=["id", "error"]) == 1).sum().to_string())
PY

echo
echo "== radlabel: the graph of one report"
.venv/bin/radlabel parse "Increased right lower lobe opacity, concerning for infection. No evidence of pneumothorax." --format table

echo
echo "== radvision: train a tiny CNN on the bundled NIH ChestX-ray14 sample -> $out/run"
.venv/bin/radvision train configs/demo.yaml output.run_dir="$out/run"
echo "Run directory:"; ls "$out/run"
