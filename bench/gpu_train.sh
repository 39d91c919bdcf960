#!/usr/bin/env bash
# Training on a CUDA machine, end to end through the CLI: every preset, bf16 autocast,
# channels-last, --compile, resume, and a detached job stopped gracefully.
#   bash bench/gpu_train.sh WORKSPACE OUTDIR
# WORKSPACE must hold facesets a and b (swapdeck extract ...). Prints one line per run.
set -uo pipefail
ws=$1
out=$2
py=${PYTHON:-python3}
sd=("$py" -m engine.cli)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$py" -c "import torch; print('torch', torch.__version__, 'bf16', torch.cuda.is_bf16_supported())"
"$py" -c "from engine.gpu import gpu_stats; print(gpu_stats())" 2>&1 | tail -1
run() {  # name, then train flags
  local name=$1
  shift
  local t0=$SECONDS
  "${sd[@]}" train -w "$ws" -m "$name" -a a -b b --log-every 50 --save-every 100000 \
    --preview-every 100000 --snapshot-every 0 --json "$@" >"$out/$name.jsonl" 2>"$out/$name.err"
  local rc=$?
  "$py" - "$out/$name.jsonl" "$name" "$rc" "$((SECONDS - t0))" <<'PY'
import json, sys
path, name, rc, wall = sys.argv[1:]
events = [json.loads(line) for line in open(path) if line.strip()]
start = next((e["detail"] for e in events if e["type"] == "started"), {})
rates = [e["examples_per_s"] for e in events if e["type"] == "metrics"]
last = events[-1] if events else {}
steady = sorted(rates[1:])[len(rates[1:]) // 2] if len(rates) > 1 else None
print(f"{name}: rc {rc}, {wall} s, {start.get('device')} {start.get('precision')}, "
      f"{start.get('parameters', 0) / 1e6:.1f} M params, from step {start.get('start_step')}, "
      f"median examples/s {steady}, last: {last.get('type')} "
      f"{ {k: last.get('result', {}).get(k) for k in ('steps', 'loss_a', 'loss_b')} }")
PY
  [ "$rc" = 0 ] || tail -3 "$out/$name.err"
}
run tiny --preset tiny --steps 600
run tiny --steps 800                       # resume on CUDA
if [ "${QUICK:-0}" = 1 ]; then
  run original16c --preset original --steps 300 --compile
  run original16c --steps 500 --compile
  exit
fi
run original16 --preset original --steps 400
run original48 --preset original --batch-size 48 --steps 200  # sample faceset: 60 training faces
run original16c --preset original --steps 400 --compile
run hd128df --preset hd --size 128 --steps 200
run hd128liae --preset hd --size 128 --layout liae --steps 200
run hd256df --preset hd --size 256 --steps 60 --batch-size 8
run original16c --steps 600 --compile        # resume a compiled model
# A detached job on the GPU, stopped gracefully: its checkpoint must be saved first.
id=$("${sd[@]}" train -w "$ws" -m detached -a a -b b --preset original --steps 1000000 --detach)
sleep 25
"${sd[@]}" jobs stop "$id" -w "$ws"
"${sd[@]}" jobs list -w "$ws" --json | "$py" -c "
import json, sys
for j in json.load(sys.stdin):
    print('job', j['id'], j['state'], j['exit_code'], j['reason'])"
tail -2 "$ws/jobs/$id/events.jsonl" | cut -c1-300
