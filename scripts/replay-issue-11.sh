#!/usr/bin/env bash
# Replays the list of issue 11 ("No crash, no silent wrong answer, and a report
# that explains native vs Xen") against the built CLI and checks each outcome.
# Exits 0 when every item behaves as the issue asks; prints one line per check.
#   npm run build && scripts/replay-issue-11.sh
set -uo pipefail
cd "$(dirname "$0")/.."
P=(node dist/tools/cli.js)
W=tools/workloads/fork-exit.pvw
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
n=0

# check NAME WANT_EXIT REGEX_ON_STDERR_OR_STDOUT -- command...
check() {
  local name=$1 want=$2 re=$3
  shift 4
  n=$((n + 1))
  local out rc
  out=$(timeout 120 "$@" 2>&1)
  rc=$?
  if [[ $rc -ne $want ]] || ! grep -Eq -- "$re" <<<"$out" || grep -Eq '^\s+at .*\(|internal error' <<<"$out"; then
    echo "FAIL $name: exit $rc (want $want)"
    head -5 <<<"$out" | sed 's/^/     /'
    fails=$((fails + 1))
  else
    echo "ok   $name"
  fi
}
absent() { # NAME FILE
  n=$((n + 1))
  if [[ -e $2 ]]; then echo "FAIL $1: $2 was left behind"; fails=$((fails + 1)); else echo "ok   $1"; fi
}

printf 'machine mem=64M\nprocess a\nmmap a 0x1000000 8K rw\nwrite a 0x1000002 7\nread a 0x1000002 expect 7\nread a 0x1000ffe\nwrite a 0x1001ffe 1 expect segv\nvmalloc v 8K\nkwrite v 2 5\nkread v 2 expect 5\nkwrite v 4094 9\nkread v 4094 expect 9\n' >"$T/unaligned.pvw"
printf 'process a\nvmalloc v 4K\nkread v 4094\n' >"$T/kread.pvw"
printf 'process a\nmeasure x {\n  measure x {\n    switch a\n  }\n}\n' >"$T/nested.pvw"
printf 'process a\nmmap a 0x1000000 4K rw\nrepeat 100000 {\n  touch a 0x1000000 0x3F000000 read\n}\n' >"$T/endless.pvw"
head -c 5000000 /dev/zero | tr '\0' x >"$T/lineless.pvw"

echo "== Crashes"
check "boot --mem 4G --backend xen refused naming the limit" 2 'at most 4095M' -- "${P[@]}" boot $W --mem 4G --backend xen --trace "$T/t4g.json"
absent "  ... and no 0-byte trace left" "$T/t4g.json"
printf 'machine mem=4G backend=xen\nprocess a\n' >"$T/m4g.pvw"
check "machine mem=4G backend=xen refused at its line" 2 'm4g\.pvw:1:13: mem=4096M is too large' -- "${P[@]}" boot "$T/m4g.pvw"
check "compare --mem 4G refused" 2 'compare runs it under Xen' -- "${P[@]}" compare $W --mem 4G
check "inject --mem 4G --backend xen refused" 2 'at most 4095M' -- "${P[@]}" inject $W --mem 4G --backend xen
check "4G under Xen works with --above-4g" 0 'ok: run completed' -- "${P[@]}" boot $W --mem 4G --backend xen --above-4g
check "unaligned and page-straddling accesses emulated (both backends agree)" 0 'equivalent: the guest observed the same' -- "${P[@]}" compare "$T/unaligned.pvw"
check "kread v 4094 blames the extent" 2 "the 4-byte access 0xffe\.\.0x1001 runs past the end of area 'v'" -- "${P[@]}" boot "$T/kread.pvw"
check "boot /dev/zero refused at the limit" 2 'larger than 4194304 bytes' -- "${P[@]}" boot /dev/zero
check "boot /dev/urandom refused at the limit" 2 'larger than 4194304 bytes' -- "${P[@]}" boot /dev/urandom
check "a 5 MB line-less script refused at the limit" 2 'larger than 4194304 bytes' -- "${P[@]}" boot "$T/lineless.pvw"
check "vectors /dev/zero refused at the limit" 2 'limit for a vector file' -- "${P[@]}" vectors /dev/zero
check "report on a line-less non-trace refused" 2 'not a trace' -- "${P[@]}" report "$T/lineless.pvw" -o "$T/r.html"
check "--trace /dev/full: clear error, exit 2" 2 'cannot write /dev/full \(ENOSPC\)' -- "${P[@]}" boot $W --trace /dev/full
check "--trace into a missing directory: clear error" 2 '--trace: cannot write' -- "${P[@]}" boot $W --trace "$T/no/such/t.json"
printf 'process a\nmmap a 0x10000000 1G rw\nrepeat 40 {\n  touch a 0x10000000 1G write\n}\n' >"$T/long.pvw"
n=$((n + 1))
"${P[@]}" boot "$T/long.pvw" --mem 2G --trace "$T/long.json" >/dev/null 2>"$T/long.err" &
pid=$!
sleep 2.5
kill -INT $pid
wait $pid
rc=$?
if [[ $rc -eq 130 ]] && grep -q 'closed at the interruption' "$T/long.err" && node -e "JSON.parse(require('fs').readFileSync('$T/long.json','utf8'))"; then
  echo "ok   Ctrl-C mid-run: trace closed (valid JSON) and said so, exit 130"
else
  echo "FAIL Ctrl-C mid-run: exit $rc"; sed 's/^/     /' "$T/long.err"; fails=$((fails + 1))
fi

echo "== Silently wrong or surprising"
check "compare a b --trace P refused" 2 'one workload at a time' -- "${P[@]}" compare $W $W --trace "$T/P"
cp $W "$T/w.pvw"
check "boot w.pvw --trace w.pvw refused" 2 'is an input of this command' -- "${P[@]}" boot "$T/w.pvw" --trace "$T/w.pvw"
"${P[@]}" boot $W --trace "$T/t.json" >/dev/null
check "report t.json -o t.json refused" 2 'is an input of this command' -- "${P[@]}" report "$T/t.json" -o "$T/t.json"
check "--seed shuffles the Xen p2m (recorded in the trace)" 0 '"p2m":"shuffled","seed":7' -- bash -c "${P[*]} boot $W --backend xen --seed 7 --trace $T/s7.json >/dev/null && head -c 400 $T/s7.json"
calls=$("${P[@]}" boot $W --backend xen --json | node -e "const d=JSON.parse(require('fs').readFileSync(0,'utf8'));let n=0;for(const[k,v]of Object.entries(d.hypercalls))if(!k.includes(':'))n+=v;console.log(n.toLocaleString('en-US'))")
check "compare's hypercall total counts calls ($calls), not mmuext_op:CMD too" 0 "xen: .*hypercalls $calls\$" -- "${P[@]}" compare $W
printf 'process a\nread a 0x1000 expect segv\n' >"$T/segv.pvw"
check "compare's faults count SIGSEGV like boot" 0 'native: walks [0-9]+, faults 1,' -- "${P[@]}" compare "$T/segv.pvw"
check "nested measure x { measure x } refused" 2 "measure 'x' inside a measure 'x' block" -- "${P[@]}" boot "$T/nested.pvw"
check "vectors --expect with the input vectors refused" 2 "field 'format'.*this is a vector file" -- "${P[@]}" vectors tests/vectors/sdm-suite.json --expect tests/vectors/sdm-suite.json
echo '{}' >"$T/empty.json"
check "vectors --expect {} refused" 2 "field 'format'" -- "${P[@]}" vectors tests/vectors/sdm-suite.json --expect "$T/empty.json"
check "vectors --expect with a trace refused" 2 "field 'format'" -- "${P[@]}" vectors tests/vectors/sdm-suite.json --expect "$T/t.json"
node -e "const f=require('fs');const e=JSON.parse(f.readFileSync('tests/vectors/sdm-suite.expected.json','utf8'));e.cases[0].steps[0]={pa:'0x1'};f.writeFileSync('$T/one.json',JSON.stringify(e))"
check "vectors --expect says \"1 difference\"" 1 '614 cases, 1 difference$' -- "${P[@]}" vectors tests/vectors/sdm-suite.json --expect "$T/one.json"
jq . "$T/t.json" >"$T/pretty.json" 2>/dev/null || node -e "const f=require('fs');f.writeFileSync('$T/pretty.json',JSON.stringify(JSON.parse(f.readFileSync('$T/t.json','utf8')),null,2))"
node -e "const f=require('fs');f.writeFileSync('$T/oneline.json',JSON.stringify(JSON.parse(f.readFileSync('$T/t.json','utf8'))))"
echo '{"traceEvents":[]}' >"$T/empty-trace.json"
check "report accepts jq-reformatted traces" 0 'wrote' -- "${P[@]}" report "$T/pretty.json" -o "$T/a.html"
check "report accepts one-line traces" 0 'wrote' -- "${P[@]}" report "$T/oneline.json" -o "$T/b.html"
check "report accepts {\"traceEvents\":[]}" 0 'wrote' -- "${P[@]}" report "$T/empty-trace.json" -o "$T/c.html"
echo '{"traceEvents":[{"name":"w","ph":"X","ts":"1","dur":1}]}' >"$T/b1.json"
echo '{"traceEvents":[{"name":"w","ph":"X","ts":1,"dur":-1}]}' >"$T/b2.json"
echo '{"traceEvents":[{"name":"w","ph":"X","ts":1,"dur":1e308}]}' >"$T/b3.json"
echo '{"traceEvents":[{"name":"w","ph":"X","ts":1,"dur":1},]}' >"$T/b4.json"
check "report rejects a string ts" 2 '"ts" must be a number' -- "${P[@]}" report "$T/b1.json" -o "$T/x.html"
check "report rejects a negative dur" 2 '"dur" must not be negative' -- "${P[@]}" report "$T/b2.json" -o "$T/x.html"
check "report rejects dur 1e308" 2 'beyond 2\^53' -- "${P[@]}" report "$T/b3.json" -o "$T/x.html"
check "report rejects trailing commas" 2 'trailing comma' -- "${P[@]}" report "$T/b4.json" -o "$T/x.html"
absent "  ... and writes no report for them" "$T/x.html"
check "repeat 100000 { touch … 0x3F000000 } refused (work in pages)" 2 'would walk about [0-9]+ pages in all' -- "${P[@]}" boot "$T/endless.pvw"
n=$((n + 1))
if [[ ! -e .npmrc ]] || ! grep -q 'loglevel *= *silent' .npmrc; then echo "ok   npm errors visible (no loglevel=silent)"; else echo "FAIL .npmrc silences npm"; fails=$((fails + 1)); fi

echo "== Consistency"
check "compare --trace FILE writes FILE.native.json / FILE.xen.json" 0 'fork\.native\.json.*fork\.xen\.json' -- bash -c "${P[*]} compare $W --trace $T/fork.json >/dev/null && ls $T/fork.native.json $T/fork.xen.json | tr '\n' ' '"
check "--trace DIR refused" 2 'is a directory' -- "${P[@]}" compare $W --trace "$T"
check "vectors -o works" 0 '^$' -- "${P[@]}" vectors tests/vectors/sdm-suite.json -o "$T/res.json"
check "plain pvmmu: usage, exit 2" 2 'Usage: pvmmu' -- "${P[@]}"
check "--pae --no-pae refused" 2 'contradict each other' -- "${P[@]}" boot $W --pae --no-pae
check "--mem 256: did you mean 256M" 2 'did you mean 256M\?' -- "${P[@]}" boot $W --mem 256
check "--mem 256m accepted" 0 'mem 256M' -- "${P[@]}" boot $W --mem 256m
check "one error style (commander's errors start with pvmmu:)" 2 "^pvmmu: option '--cpu" -- "${P[@]}" boot $W --cpu pentium9
check "compare --help examples name files that exist" 0 'tools/workloads/vmalloc-churn.pvw' -- "${P[@]}" compare --help
check "demo --help has examples" 0 'Examples:' -- "${P[@]}" demo --help
check "inject refuses --trace (as docs/cli.md says)" 2 "unknown option '--trace'" -- "${P[@]}" inject $W --trace "$T/i.json"
check "docs/cli.md says inject has no --trace" 0 'except `--trace`' -- grep -n 'except `--trace`' docs/cli.md
check "quoted sessions in docs match today's output" 0 '0 quoted sessions differ' -- node dist/tools/doc-figures.js
n=$((n + 1))
if grep -rn '\.\./shared' README.md docs >/dev/null; then echo "FAIL docs reference ../shared"; fails=$((fails + 1)); else echo "ok   docs stand alone (no ../shared)"; fi
check "the vector format is in docs/" 0 'x86-mmu-vectors/1' -- cat docs/vectors.md
check "library code out of command modules (nothing imports tools/commands/)" 0 '^none$' -- bash -c "grep -rln \"from '\\.\\./commands/\\|tools/commands/\" tools tests --include=*.ts | grep -v '^tools/cli.ts' || echo none"
check "one hex()" 0 '^1$' -- bash -c "grep -rn 'function hex(\\|const hex = ' --include=*.ts emulator hypervisor guest-kernel tools tests | wc -l"

echo "== What the refusal and the report tell"
check "--json refusal carries the full reason" 1 '"op": "[a-z_ ]+",' -- "${P[@]}" boot tools/workloads/prepatch-on-xen.pvw --json
check "compare: no ratio for a stopped run" 1 '\(workload\) .* stopped' -- "${P[@]}" compare tools/workloads/prepatch-on-xen.pvw
"${P[@]}" compare tools/workloads/prepatch-on-xen.pvw --trace "$T/rp.json" >/dev/null 2>&1
check "trace event args carry the refusal (op, mfn, log)" 0 '"name":"hypervisor refusal".*"mfn":"0x' -- cat "$T/rp.xen.json"
check "traces carry the configuration as metadata" 0 '"otherData":\{.*"backend":"xen","paging":"PAE"' -- head -c 600 "$T/rp.xen.json"
"${P[@]}" compare tools/workloads/default.pvw --trace "$T/d.json" >/dev/null
check "measure blocks are spans" 0 '"cat":"measure","ph":"X"' -- cat "$T/d.xen.json"
check "report: banner for the stopped run" 0 'class="banner"' -- bash -c "${P[*]} report $T/rp.native.json $T/rp.xen.json -o $T/rp.html 2>/dev/null; cat $T/rp.html"
check "report: configuration header, per-measure stacked bars, regions" 0 'class="config".*|class="measures"' -- bash -c "${P[*]} report $T/d.native.json $T/d.xen.json -o $T/d.html 2>/dev/null; cat $T/d.html"
check "report: most-missed pages labelled by region" 0 '<td class="txt">(user|direct map|vmalloc)</td>' -- cat "$T/d.html"

echo
echo "$((n - fails)) of $n checks passed"
[[ $fails -eq 0 ]]
