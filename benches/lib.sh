# Shared by the benchmark scripts: `source benches/lib.sh` from the repository's root.

# Kills, on exit, every process whose pid the script appends to `pids`, then stops SERVICE of
# scripts/services.sh (tansu, clickhouse or all), whatever way the script ends.
bench_cleanup_on_exit() { # SERVICE
  pids=()
  bench_services=$1
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/services.sh stop "$bench_services" >/dev/null 2>&1 || true
}

# The shipped config in WORK/config, its sources replaced by one replay of the first N rows of TSV
# (kept as WORK/posts.tsv, published from WORK/posts.jsonl as fast as the broker takes them).
bench_replay_config() { # WORK TSV N
  local work=$1 tsv=$2 n=$3
  mkdir -p "$work/config"
  cp config/*.toml "$work/config/"
  head -n $((n + 1)) "$tsv" > "$work/posts.tsv"
  python3 benches/tsv_to_posts.py "$work/posts.tsv" "$work/posts.jsonl"
  { sed -n '/^\[defaults\]/,/^$/p' config/sources.toml
    printf '[[replay]]\nname = "bench"\npath = "%s"\nposts_per_second = 0\n' "$work/posts.jsonl"
  } > "$work/config/sources.toml"
}
