#!/bin/bash
# controls.sh - end-to-end tests of the access controls on a real scopeholdfs
# mount, read by real uids (setpriv): access requests with approve and reject,
# task-scoped grants, rate limits, canaries, alerts delivered to a program
# (slow, failing, unsafe), and the shadm commands' refusals of bad input. Exact errno names come from
# tests/fixtures/e2e/probe.py, the trail from `shadm --json audit`. The harness
# (skip without FUSE or root, mount with a deadline, always unmount) is
# tests/mount.sh.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
m_start controls "it mounts, and runs readers as other uids with setpriv"

UA=23501 UB=23502 UC=23503 UE=23504   # need not exist in /etc/passwd
ST=$T_TMP/store MNT=$T_TMP/mnt CONF=$T_TMP/scopehold.ini LOG=$T_TMP/fs.log
MNTS=$MNT
mkdir -m 0700 "$ST"
mkdir -m 0755 "$MNT"
: >"$LOG"

# wait_eq WHAT WANT SECS CMD...: ok once CMD prints WANT, polling for up to SECS
wait_eq() {
	what=$1 want=$2 secs=$3; shift 3
	got=""
	for _ in $(seq $((secs * 10))); do
		got=$("$@" 2>&1)
		[ "$got" = "$want" ] && break
		sleep 0.1
	done
	expect_eq "$what" "$got" "$want"
}

# the alert hook: what it gets on stdin, its environment and uid, one line each
HOOK=$T_TMP/hook.sh ALERTS=$T_TMP/alerts.jsonl
printf '#!/bin/sh\n/bin/cat >>%s\n/usr/bin/env >>%s\n/usr/bin/id -u >>%s\n' \
	"$ALERTS" "$T_TMP/hook.env" "$T_TMP/hook.uid" >"$HOOK"
chmod 0755 "$HOOK"
: >"$ALERTS"; : >"$T_TMP/hook.env"; : >"$T_TMP/hook.uid"
write_conf "$CONF" "$ST" "$MNT"
printf '[alerts]\nexec = %s\ntimeout = 5s\n' "$HOOK" >>"$CONF"
# alerts_of OP FILTER...: aq.py over the lines the hook got
alerts_of() { "$PY" "$AQ" "$@" <"$ALERTS"; }
setup sa init
setup sa provider add gh
for s in req rej other; do printf 'val-%s-ctlSECRET' "$s" | setup sa secret set "gh/$s"; done
printf 'val-hidden-ctlSECRET' | setup sa secret set gh/hidden
setup sa project add pr
for s in req rej other; do setup sa project attach pr "gh/$s"; done
setup sa agent add ag --uid "$UA"
setup sa assign ag pr
setup_check "controls setup: shadm commands failed"
ok "controls setup: a store with one agent and three candidates"

start_fs "$CONF" "$LOG" "$MNT"
expect_mount "scopeholdfs mounts $MNT within 10 s" "$MNT" "$LOG"
D=$MNT/ag/gh

# ---- 1. access requests -----------------------------------------------------------
expect_eq "request: an open without a grant is EACCES" "$(probe "$UA" open "$D/req")" "EACCES"
expect_eq "request: a second open is EACCES too" "$(probe "$UA" open "$D/req")" "EACCES"
expect_eq "request: another uid is refused (EACCES)" "$(probe "$UB" open "$D/req")" "EACCES"
expect_eq "request: a secret that is no candidate is ENOENT" "$(probe "$UA" open "$D/hidden")" "ENOENT"
wait_eq "request: shadm requests lists one pending request (within 3 s)" \
	"ag gh/req pending 2 $UA" 3 \
	sh -c "'$SHADM' -c '$CONF' requests | awk 'NR > 1 {print \$1, \$2, \$3, \$4, \$7}'"
expect_eq "request: --json names the last caller's uid, pid and executable" \
	"$(sa --json requests | "$PY" -c 'import json,sys
r=[json.loads(l) for l in sys.stdin]
print(len(r), r[0]["state"], r[0]["count"], r[0]["uid"], r[0]["pid"] is not None, r[0]["exe"])')" \
	"1 pending 2 $UA True $PYREAL"
expect_eq "request: no request for another uid or a non-candidate" \
	"$(sa --json requests --all | wc -l)" "1"
expect_run "request: approve --uses 1 grants it" 0 "" sa approve ag gh/req --uses 1
expect_eq "request: approve says what it did" "$OUT" "approved the request of ag for gh/req"
expect_eq "request: nothing pending right after approve" "$(sa requests | tail -n +2)" ""
expect_eq "request: the agent's next open after approve succeeds" \
	"$(probe "$UA" open "$D/req")" "ok $(printf 'val-req-ctlSECRET' | wc -c)"
expect_run "request: approve of a closed request fails" 1 \
	"shadm: agent 'ag' has no pending request for 'gh/req'" sa approve ag gh/req
expect_eq "request: the approved grant's one use is spent" "$(probe "$UA" open "$D/req")" "EACCES"
expect_run "request: approve of a request never made fails" 1 \
	"shadm: agent 'ag' has no pending request for 'gh/other'" sa approve ag gh/other
expect_eq "request: ... and grants nothing" "$(sa --json grants ag | grep -c gh/other)" "0"
expect_run "request: approve of an unknown agent fails" 1 "shadm: no agent 'nobody'" \
	sa approve nobody gh/req
expect_run "request: approve without a secret is a usage error" 2 - sa approve ag
probe "$UA" open "$D/rej" >/dev/null
wait_eq "request: a refused open of gh/rej, and the spent grant of gh/req, are pending (within 3 s)" \
	"ag gh/rej pending,ag gh/req pending," 3 \
	sh -c "'$SHADM' -c '$CONF' requests | awk 'NR > 1 {print \$1, \$2, \$3}' | sort | tr '\n' ,"
expect_run "request: reject closes it" 0 "" sa reject ag gh/rej
expect_eq "request: reject says what it did" "$OUT" "rejected the request of ag for gh/rej"
# before the next refused open: a refusal counted after the reject may reopen
# the request at the next flush (docs/security.md, "Access requests")
expect_eq "request: requests --all shows approved and rejected ones" \
	"$(sa --json requests --all | "$PY" -c 'import json,sys
print(" ".join(sorted(json.loads(l)["name"] + ":" + json.loads(l)["state"] + ":" + str(json.loads(l)["actor"] is not None) for l in sys.stdin)))')" \
	"rej:rejected:True req:pending:False"
expect_eq "request: a rejected request grants nothing" "$(probe "$UA" open "$D/rej")" "EACCES"
expect_eq "request: the trail holds one approve and one reject, with the operator" \
	"$(aq count type=approve agent=ag secret=gh/req actor="$(id -un)") $(aq count type=reject agent=ag secret=gh/rej actor="$(id -un)")" "1 1"
expect_eq "request: the refusals stay in the trail as deny no-grant and used-up" \
	"$(aq sum type=deny agent=ag secret=gh/req reason=no-grant uid=$UA) $(aq sum type=deny agent=ag secret=gh/req reason=used-up uid=$UA)" "2 1"

# ---- 2. task-scoped grants -----------------------------------------------------------
TLEN=$(printf 'val-other-ctlSECRET' | wc -c)
sleep 600 & TPID1=$!
HELPERS="$HELPERS $TPID1"
expect_run "task: grant --while-pid of a live process" 0 "" sa grant ag gh/other --while-pid "$TPID1"
expect_eq "task: grant says what it did" "$OUT" "granted gh/other to ag (while pid $TPID1 lives)"
expect_eq "task: the open works while the process lives" "$(probe "$UA" open "$D/other")" "ok $TLEN"
expect_eq "task: shadm grants shows it live, with its pid" \
	"$(sa --json grants ag | "$PY" "$AQ" show name=other | "$PY" -c 'import json,sys
g=json.loads(sys.stdin.read()); print(g["state"], g["while_pid"])')" "live $TPID1"
expect_eq "task: shadm check allows" "$(sa check ag gh/other)" "allow"
stop_fs "$FS_PID"
start_fs "$CONF" "$LOG" "$MNT"
require_mount "task: the daemon restarts" "$MNT" "$LOG"
expect_eq "task: after a daemon restart the open still works" "$(probe "$UA" open "$D/other")" "ok $TLEN"
kill "$TPID1"; wait "$TPID1" 2>/dev/null
expect_eq "task: once the process ended the next open is EACCES" "$(probe "$UA" open "$D/other")" "EACCES"
# with the daemon stopped nothing sweeps, so what shadm shows is deterministic
stop_fs "$FS_PID"
sleep 600 & TPID2=$!
HELPERS="$HELPERS $TPID2"
setup sa grant ag gh/rej --while-pid "$TPID2"
kill "$TPID2"; wait "$TPID2" 2>/dev/null
expect_run "task: shadm check says task-ended" 1 "" sa check ag gh/rej
expect_eq "task: ... with the reason and its text" "$OUT" \
	"deny: task-ended (the process the grant was tied to has ended)"
expect_eq "task: shadm grants shows the state task-ended" \
	"$(sa --json grants ag | "$PY" "$AQ" show name=rej | "$PY" -c 'import json,sys
g=json.loads(sys.stdin.read()); print(g["state"], g["while_pid"])')" "task-ended $TPID2"
expect_eq "task: the table says task-ended too" \
	"$(sa grants ag | awk '$2 == "gh/rej" {print $NF}')" "task-ended"
start_fs "$CONF" "$LOG" "$MNT"
require_mount "task: the daemon starts again" "$MNT" "$LOG"
expect_eq "task: the ended task's grant refuses the open (EACCES)" "$(probe "$UA" open "$D/rej")" "EACCES"
wait_eq "task: the mount sweeps both ended task grants (within 5 s)" "" 5 \
	sh -c "'$SHADM' -c '$CONF' --json grants ag | grep -e '\"name\":\"other\"' -e '\"name\":\"rej\"'"
expect_eq "task: each sweep is audited with reason task-ended" \
	"$(aq count type=sweep agent=ag secret=gh/other reason=task-ended actor=scopeholdfs) $(aq count type=sweep agent=ag secret=gh/rej reason=task-ended)" "1 1"
expect_eq "task: the grant event names the pid" \
	"$(aq count type=grant agent=ag secret=gh/other "reason=while pid $TPID1")" "1"
expect_run "task: an unknown pid is refused" 1 "shadm: no running process with pid 2147483600" \
	sa grant ag gh/other --while-pid 2147483600
expect_run "task: --while-pid 0 is a usage error" 2 "shadm: --while-pid needs a number greater than 0" \
	sa grant ag gh/other --while-pid 0
expect_run "task: --while-pid abc is a usage error" 2 "shadm: --while-pid needs a number" \
	sa grant ag gh/other --while-pid abc
expect_eq "task: the refused grants changed nothing" "$(sa --json grants ag | grep -c '"name":"other"')" "0"
expect_run "task: approve --while-pid of an unknown pid is refused" 1 \
	"shadm: no running process with pid 2147483600" sa approve ag gh/req --while-pid 2147483600
expect_eq "task: ... and leaves the request pending" "$(sa requests | awk '$2 == "gh/req" {print $3}')" "pending"

# ---- 3. rate limits -------------------------------------------------------------------
RLEN=$(printf 'val-req-ctlSECRET' | wc -c)
setup sa agent add rl --uid "$UB" --rate 3/1m
setup sa assign rl pr
setup sa grant rl gh/req
setup sa grant ag gh/other
setup_check "rate: setup failed"
expect_eq "rate: agent add --rate shows in agent show" "$(sa agent show rl | awk '$1 == "rate:" {print $2}')" "3/1m"
R=$MNT/rl/gh/req
expect_eq "rate: 3 opens within the limit of 3/1m work" \
	"$(probe "$UB" open "$R"), $(probe "$UB" open "$R"), $(probe "$UB" open "$R")" "ok $RLEN, ok $RLEN, ok $RLEN"
expect_eq "rate: the 4th open in the minute is EACCES" "$(probe "$UB" open "$R")" "EACCES"
expect_eq "rate: 20 more opens are all EACCES" "$(probe "$UB" flood "$R" 20)" "EACCES:20"
expect_eq "rate: another agent is not limited by it" "$(probe "$UA" open "$D/other")" "ok $TLEN"
wait_eq "rate: the refusals are deny events with reason rate-limit, coalesced (count 21)" "21" 4 \
	sh -c "'$SHADM' -c '$CONF' --json audit | '$PY' '$AQ' sum type=deny agent=rl secret=gh/req reason=rate-limit uid=$UB"
expect_eq "rate: ... in few rows" "$(test "$(aq count type=deny agent=rl reason=rate-limit)" -le 3 && echo few)" "few"
expect_eq "rate: shadm check shows the limit" "$(sa check rl gh/req)" \
	"allow
note: rate limit 3/1m, counted by the mount"
expect_run "rate: agent set --rate off" 0 "" sa agent set rl --rate off
expect_eq "rate: ... says so" "$OUT" "agent rl: no rate limit"
expect_eq "rate: the next open works again" "$(probe "$UB" open "$R")" "ok $RLEN"
expect_run "rate: agent set --rate 1/1s" 0 "" sa agent set rl --rate 1/1s
expect_eq "rate: ... says so" "$OUT" "agent rl: rate limit 1/1s"
expect_eq "rate: one open per second: the first works, the second is refused" \
	"$(probe "$UB" open "$R"), $(probe "$UB" open "$R")" "ok $RLEN, EACCES"
sleep 2.1
expect_eq "rate: two seconds later it works again" "$(probe "$UB" open "$R")" "ok $RLEN"
expect_eq "rate: the changes are audited as agent-rate" \
	"$(aq count type=agent-rate agent=rl reason=off) $(aq count type=agent-rate agent=rl reason=1/1s)" "1 1"
RATE_ERR="shadm: invalid rate '%s': use N/DURATION with N from 1 to 1000000000 (for example 100/1m), or off"
for bad in 0/1m abc 5 5/0s -1/1m 5/1x 1000000001/1s; do
	# shellcheck disable=SC2059
	expect_run "rate: --rate $bad is refused with one line" 1 "$(printf "$RATE_ERR" "$bad")" \
		sa agent set rl --rate "$bad"
done
expect_run "rate: agent add with a bad rate is refused" 1 "$(printf "$RATE_ERR" 0/1m)" \
	sa agent add rl2 --uid 23599 --rate 0/1m
expect_run "rate: ... and adds no agent" 1 "shadm: no agent 'rl2'" sa agent show rl2
expect_run "rate: agent set without a change is a usage error" 2 \
	"shadm: agent set needs --uid, --gid, --no-gid, --exe, --no-exe, --exe-sha256, --no-exe-sha256, --cgroup, --no-cgroup, --human, --agent or --rate" \
	sa agent set rl
expect_run "rate: agent set of an unknown agent fails" 1 "shadm: no agent 'ghost'" \
	sa agent set ghost --rate 1/1m
expect_eq "rate: the refused changes left 1/1s" "$(sa --json agent show rl | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["rate"])')" "1/1s"

# ---- 4. canary secrets ----------------------------------------------------------------
printf 'ghp_ctlSECRETcanary0123456789' >"$T_TMP/canary"
CLEN=$(wc -c <"$T_TMP/canary" | tr -d ' ')
expect_run "canary: secret set --canary" 0 "" sa secret set gh/canary --canary --from-file "$T_TMP/canary"
expect_eq "canary: ... says what it did" "$OUT" "gh/canary: version 1 (created)"
expect_run "canary: --canary on an empty stdin is refused" 1 \
	"shadm: a canary needs a value that looks real: the input is empty" sa secret set gh/empty --canary </dev/null
expect_eq "canary: ... and stores nothing" "$(sa --json secret list gh | grep -c '"name":"empty"')" "0"
setup sa project attach pr gh/canary
setup sa grant ag gh/canary
setup_check "canary: setup failed"
expect_eq "canary: secret list marks it (operators only)" \
	"$(sa secret list gh | awk '$2 == "canary" {print $NF} $2 == "other" {print $NF}' | tr '\n' ' ')" "canary - "
expect_eq "canary: --json says canary true" \
	"$(sa --json secret list gh | "$PY" "$AQ" field:canary name=canary)" "True"
expect_eq "canary: through the mount it looks like any granted secret (mode, owner, size)" \
	"$(probe "$UA" stat "$D/canary")" "ok 400 $UA $CLEN"
expect_eq "canary: ... the same mode and owner as a real one" \
	"$(probe "$UA" stat "$D/other" | cut -d' ' -f1-3)" "ok 400 $UA"
expect_eq "canary: listing and stat raise no alert" "$(aq count type=alert secret=gh/canary)" "0"
as_uid "$UA" cat "$D/canary" >"$T_TMP/got.canary" 2>&1
same_bytes "canary: it is served like any secret" "$T_TMP/got.canary" "$T_TMP/canary"
expect_eq "canary: the served open raised an alert (reason canary: allow) naming the caller" \
	"$(aq count type=alert agent=ag secret=gh/canary "reason=canary: allow" uid=$UA pid? exe?)" "1"
expect_eq "canary: another uid's attempt is EACCES" "$(probe "$UB" open "$D/canary")" "EACCES"
# the kernel walks the path: the stranger is refused at ag/gh, before it names the file
expect_eq "canary: ... refused at the agent's provider directory (a deny, no canary alert)" \
	"$(aq count type=alert secret=gh/canary uid=$UB agent=ag) $(test "$(aq count type=deny agent=ag secret= reason=uid uid=$UB)" -ge 1 && echo denied)" "0 denied"
expect_eq "canary: an agent without a grant is EACCES" "$(probe "$UB" open "$MNT/rl/gh/canary")" "EACCES"
expect_eq "canary: ... and raised an alert (canary: no-grant)" \
	"$(aq count type=alert agent=rl secret=gh/canary "reason=canary: no-grant" uid=$UB)" "1"
expect_run "canary: secret canary off" 0 "" sa secret canary gh/canary off
expect_eq "canary: ... says so" "$OUT" "gh/canary: canary off"
expect_eq "canary: unmarked, an open raises no alert" \
	"$(probe "$UA" open "$D/canary") $(aq count type=alert secret=gh/canary)" "ok $CLEN 2"
expect_run "canary: secret canary on" 0 "" sa secret canary gh/canary on
expect_run "canary: secret canary maybe is a usage error" 2 \
	"shadm: secret canary takes on or off, not 'maybe'" sa secret canary gh/canary maybe
expect_run "canary: secret canary of an unknown secret fails" 1 "shadm: no secret 'gh/nope'" \
	sa secret canary gh/nope on
expect_eq "canary: the marks are audited" \
	"$(aq count type=canary secret=gh/canary reason=on) $(aq count type=canary secret=gh/canary reason=off)" "2 1"
expect_eq "canary: shadm check names the canary" "$(sa check ag gh/canary; sa --json check rl gh/canary)" \
	"allow
note: canary: every open through the mount raises an alert
{\"decision\":\"deny\",\"reason\":\"no-grant\",\"text\":\"no direct grant for this secret\",\"agent\":\"rl\",\"secret\":\"gh/canary\",\"uid\":$UB,\"gid\":$UB,\"exe\":null,\"rate\":\"1/1s\",\"canary\":true}"
expect_eq "canary: shadm audit --event alert lists the alerts" \
	"$(sa audit --event alert --secret gh/canary | tail -n +2 | wc -l)" "2"

# ---- 5. alerts ----------------------------------------------------------------------------
wait_eq "alerts: the hook got the two canary alerts, one line each (within 5 s)" "2" 5 \
	sh -c "'$PY' '$AQ' count type=canary <'$ALERTS'"
expect_eq "alerts: every line the hook got is one JSON object" "$(alerts_of bad)" ""
expect_eq "alerts: the served canary's alert has type, host, agent, secret, version, caller and reason" \
	"$(alerts_of show type=canary reason=allow | "$PY" -c 'import json,sys
a=json.loads(sys.stdin.readline()); c=a["caller"]
print(a["host"] == sys.argv[1], a["agent"], a["secret"], a["version"], c["uid"], c["gid"], c["pid"] > 0, c["exe"], c["sha256"], a["time"][-1])' "$(hostname)")" \
	"True ag gh/canary 1 $UA $UA True $(readlink -f /usr/bin/cat) None Z"
expect_eq "alerts: the refused canary's alert says why" \
	"$(alerts_of count type=canary agent=rl reason=no-grant)" "1"
expect_eq "alerts: the hook ran as root" "$(sort -u "$T_TMP/hook.uid")" "0"
# (sh sets PWD itself)
expect_eq "alerts: with an empty environment" "$(grep -v '^PWD=/$' "$T_TMP/hook.env")" ""
expect_eq "alerts: the rate limit's first refusals alerted (rate-limit)" \
	"$(test "$(alerts_of count type=rate-limit agent=rl)" -ge 1 && echo yes)" "yes"
expect_eq "alerts: ... and are in the trail" \
	"$(test "$(aq count type=alert agent=rl "reason=rate-limit: rate-limit")" -ge 1 && echo yes)" "yes"
expect_eq "alerts: 30 refused opens by a stranger uid are EACCES" "$(probe "$UC" flood "$D/req" 30)" "EACCES:30"
wait_eq "alerts: ... and raise one deny-burst alert for that uid (within 5 s)" "1" 5 \
	sh -c "'$PY' -c 'import json,sys; print(sum(1 for l in sys.stdin if json.loads(l)[\"type\"] == \"deny-burst\" and json.loads(l)[\"caller\"][\"uid\"] == $UC))' <'$ALERTS'"
# new-exe: only where the digest is computed anyway - an agent bound to a sha256
CAT=$(readlink -f /bin/cat)
CAT_SHA=$(sha256sum "$CAT" | cut -d' ' -f1)
setup sa agent add ex --uid "$UE" --exe "$CAT" --exe-sha256 "$CAT_SHA"
setup sa assign ex pr
setup sa grant ex gh/other
setup_check "new-exe: setup failed"
as_uid "$UE" "$CAT" "$MNT/ex/gh/other" >/dev/null 2>&1
as_uid "$UE" "$CAT" "$MNT/ex/gh/other" >/dev/null 2>&1
wait_eq "new-exe: the first read from the bound binary alerts once (within 5 s)" "1" 5 \
	sh -c "'$PY' '$AQ' count type=new-exe agent=ex <'$ALERTS'"
expect_eq "new-exe: the alert carries the executable and its sha256" \
	"$(alerts_of show type=new-exe agent=ex | "$PY" -c 'import json,sys
c=json.loads(sys.stdin.readline())["caller"]; print(c["exe"], c["sha256"])')" "$CAT $CAT_SHA"
stop_fs "$FS_PID"
start_fs "$CONF" "$LOG" "$MNT"
require_mount "new-exe: the daemon restarts" "$MNT" "$LOG"
as_uid "$UE" "$CAT" "$MNT/ex/gh/other" >/dev/null 2>&1
sleep 1
expect_eq "new-exe: after a restart the same binary does not alert again" \
	"$(alerts_of count type=new-exe agent=ex) $(aq count type=alert agent=ex "reason=new-exe: allow")" "1 1"
expect_eq "alerts: no value in what the hook got" "$(grep -c ctlSECRET "$ALERTS")" "0"

# a slow hook: killed after the timeout, never holding up an open; a full queue drops and counts
stop_fs "$FS_PID"
SLOW=$T_TMP/slow.sh CONF_SLOW=$T_TMP/slow.ini
printf '#!/bin/sh\n/bin/sleep 30\n' >"$SLOW"; chmod 0755 "$SLOW"
sed "s|^exec = .*|exec = $SLOW|; s|^timeout = .*|timeout = 1s|" "$CONF" >"$CONF_SLOW"
start_fs "$CONF_SLOW" "$LOG" "$MNT"
require_mount "slow hook: the daemon starts" "$MNT" "$LOG"
t0=$(date +%s%N)
out=$(probe "$UA" flood "$D/canary" 100)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "slow hook: 100 canary opens are all served" "$out" "ok:100"
if [ "$ms" -lt 5000 ]; then ok "slow hook: ... without waiting for the hook (${ms} ms)"
else not_ok "slow hook: ... without waiting for the hook"; echo "#   took $ms ms"; fi
wait_eq "slow hook: the hook is killed after 1 s and logged (within 4 s)" "yes" 4 \
	sh -c "grep -q 'alert not delivered (it stays in the audit trail): $SLOW was killed after 1000 ms' '$LOG' && echo yes"
stop_fs "$FS_PID"
expect_eq "slow hook: the daemon still stops cleanly" "$STOP_RC" "0"
expect_eq "slow hook: the full queue's drops are counted and logged" \
	"$(grep -cE 'alerts: [0-9]+ delivered, [0-9]+ failed, [0-9]+ dropped \(all are in the audit trail\)' "$LOG") $(grep -cE 'alerts dropped so far: the delivery queue was full' "$LOG" | sed 's/^[1-9][0-9]*$/some/')" "1 some"
expect_eq "slow hook: all 100 alerts are in the trail" \
	"$(aq count type=alert agent=ag secret=gh/canary "reason=canary: allow" uid=$UA)" "101"
# a failing hook: logged, the open still served
FAILH=$T_TMP/fail.sh
printf '#!/bin/sh\nexit 3\n' >"$FAILH"; chmod 0755 "$FAILH"
sed "s|^exec = .*|exec = $FAILH|" "$CONF" >"$CONF_SLOW"
start_fs "$CONF_SLOW" "$LOG" "$MNT"
require_mount "failing hook: the daemon starts" "$MNT" "$LOG"
expect_eq "failing hook: the canary open is served" "$(probe "$UA" open "$D/canary")" "ok $CLEN"
wait_eq "failing hook: the failure is logged (within 3 s)" "yes" 3 \
	sh -c "grep -q 'alert not delivered (it stays in the audit trail): $FAILH exited 3' '$LOG' && echo yes"
stop_fs "$FS_PID"
# an unsafe hook: refused before mounting
chmod 0775 "$FAILH"
start_fs "$CONF_SLOW" "$LOG" "$MNT"
wait "$FS_PID" 2>/dev/null; rc=$?
forget "$FS_PID"
expect_eq "unsafe hook: a group-writable program stops the daemon before it mounts (exit 1)" \
	"$rc $(mounted "$MNT" && echo mounted)" "1 "
expect_eq "unsafe hook: ... with one line saying why" \
	"$(grep -c "scopeholdfs: \[alerts\] exec '$FAILH' must be a regular executable owned by root and writable by no one else: Operation not permitted" "$LOG")" "1"
printf '[store]\npath = %s\nkey_file = %s\n[alerts]\nexec = relative.sh\n' "$ST/store.db" "$ST/master.key" >"$CONF_SLOW"
expect_run "alerts: a relative exec is a config error" 1 \
	"shadm: $CONF_SLOW:5: invalid value for 'exec': 'relative.sh'" "$SHADM" -c "$CONF_SLOW" agent list
start_fs "$CONF" "$LOG" "$MNT"
require_mount "the daemon starts again" "$MNT" "$LOG"

# ---- values never leak ---------------------------------------------------------------
if grep -rqa ctlSECRET "$LOG" "$ST"/store.db* 2>/dev/null || sa --json audit | grep -q ctlSECRET; then
	not_ok "no value in the daemon log, the store file or the trail"
else ok "no value in the daemon log, the store file or the trail"; fi
expect_verify "the audit chain verifies after the controls"
stop_fs "$FS_PID"
expect_eq "the daemon stops cleanly on SIGTERM" "$STOP_RC" "0"
t_finish
