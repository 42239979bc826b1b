#!/bin/bash
# policy-code.sh - policy as code with the real shadm: `shadm export` prints
# the access model as a stable JSON file without a single value, `shadm apply`
# of an unmodified export changes nothing, an edited one prints its plan and
# is applied in one transaction audited change by change, --dry-run and a
# failure in the middle leave the store byte for byte as it was, and a bad
# file is refused naming its line. Last, on a real scopeholdfs mount with
# real uids: a grant that apply removes is refused at the next open, and an
# agent whose uid apply changes is served to the new uid only. Uids
# 24601-24609.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/mount.sh"
m_start policy-code "it mounts, and runs readers as other uids with setpriv" sqlite3

U1=24601 U2=24602 U3=24603 U4=24604
ST=$T_TMP/store MNT=$T_TMP/mnt CONF=$T_TMP/scopehold.ini LOG=$T_TMP/fs.log
MNTS=$MNT
mkdir -m 0700 "$ST"
mkdir -m 0755 "$MNT"
: >"$LOG"
write_conf "$CONF" "$ST" "$MNT"
# the store's content, for "nothing changed"; and how many events the trail holds
sum() { sqlite3 "$ST/store.db" .dump | sha256sum | cut -d' ' -f1; }
nev() { sqlite3 "$ST/store.db" 'SELECT count(*) FROM audit'; }
# the types, agents, objects and reasons of the newest N events, one line each
last_events() {
	sa --json audit --limit "$1" | "$PY" -c 'import json,sys
for l in sys.stdin:
    e=json.loads(l); print(e["type"], e["agent"] or "-", e["secret"] or "-", e["reason"] or "-")'
}
# edit FILE OUT PYTHON: apply a python edit to the document d of FILE, write OUT as export would
edit() {
	"$PY" -c 'import json,sys
d=json.load(open(sys.argv[1]))
exec(sys.argv[3])
open(sys.argv[2],"w").write(json.dumps(d,indent=2,sort_keys=True)+"\n")' "$1" "$2" "$3"
}

setup sa init
setup sa provider add gh
printf 'tok-pcSECRET' | setup sa secret set gh/token --expires 2031-01-01
printf 'oth-pcSECRET' | setup sa secret set gh/other
setup sa provider add oa
printf 'key-pcSECRET' | setup sa secret set oa/key --canary
setup sa project add web
setup sa project attach web gh
setup sa project attach web oa/key
setup sa project add ops
setup sa agent add bot --uid "$U1" --gid "$U1" --exe "$PYREAL" \
	--exe-sha256 "$(sha256sum "$PYREAL" | cut -d' ' -f1)" --rate 100/1m
setup sa agent add hum --uid "$U2" --human
setup sa agent disable hum
setup sa assign bot web
setup sa assign hum ops
setup sa grant bot gh/token --uses 5
setup sa grant bot oa/key
setup sa grant hum gh/other --ttl 7d
setup sa grant hum oa/key
setup sa revoke hum oa/key
setup_check "policy-code setup: shadm commands failed"
ok "policy-code setup: two providers, three secrets, two projects, two agents"

# ---- export ------------------------------------------------------------------------
P=$T_TMP/export.json
expect_run "export exits 0 and prints nothing on stderr" 0 "" sa export
printf '%s\n' "$OUT" >"$P"
expect_eq "export is the file form: sorted keys, indent 2, newline at the end" \
	"$("$PY" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])),indent=2,sort_keys=True))' "$P" | sha256sum)" \
	"$(sha256sum <"$P")"
expect_eq "export holds no secret value" "$(grep -c pcSECRET "$P")" "0"
expect_eq "export names every section, the version and the workspace" \
	"$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sorted(d), d["version"], d["workspace"])' "$P")" \
	"['agents', 'projects', 'providers', 'version', 'workspace'] 1 default"
expect_eq "export: secrets by provider with expiry and canary mark" \
	"$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1]))["providers"]
print(d["gh"]["secrets"]["token"], d["gh"]["secrets"]["other"], d["oa"]["secrets"]["key"])' "$P")" \
	"{'canary': False, 'expires': '2031-01-01T00:00:00Z'} {'canary': False, 'expires': None} {'canary': True, 'expires': None}"
expect_eq "export: projects with their attachments" \
	"$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["projects"])' "$P")" \
	"{'ops': {'attach': []}, 'web': {'attach': ['gh', 'oa/key']}}"
expect_eq "export: an agent with its binding, rate, projects and grants" \
	"$("$PY" -c 'import json,sys; a=json.load(open(sys.argv[1]))["agents"]["bot"]
print(a["uid"], a["gid"], a["exe"], len(a["exe_sha256"]), a["rate"], a["enabled"], a["human"], a["projects"], a["grants"])' "$P")" \
	"$U1 $U1 $PYREAL 64 100/1m True False ['web'] {'gh/token': {'expires': None, 'uses': 5}, 'oa/key': {'expires': None, 'uses': None}}"
expect_eq "export: a disabled human agent; a revoked grant is not exported" \
	"$("$PY" -c 'import json,sys; a=json.load(open(sys.argv[1]))["agents"]["hum"]
print(a["uid"], a["gid"], a["exe"], a["enabled"], a["human"], a["projects"], list(a["grants"]), a["grants"]["gh/other"]["expires"] is not None)' "$P")" \
	"$U2 None None False True ['ops'] ['gh/other'] True"
expect_eq "export --json is the same document on one line" \
	"$(sa --json export | "$PY" -c 'import json,sys; print(json.dumps(json.load(sys.stdin),indent=2,sort_keys=True))')" \
	"$(cat "$P")"
expect_run "export takes no argument (usage error, exit 2)" 2 "shadm: unexpected argument 'x'" sa export x

# ---- apply of an unmodified export ---------------------------------------------------
n0=$(nev) s0=$(sum)
expect_run "apply of an unmodified export exits 0" 0 "" sa apply "$P"
expect_eq "apply of an unmodified export says 'no changes'" "$OUT" "no changes"
expect_eq "apply of an unmodified export records no event and changes no byte" "$(nev) $(sum)" "$n0 $s0"
expect_run "export piped into apply - changes nothing" 0 "" sh -c "'$SHADM' -c '$CONF' export | '$SHADM' -c '$CONF' apply -"
expect_eq "apply - reads standard input" "$OUT" "no changes"
expect_run "apply --json of an unmodified export" 0 "" sa --json apply "$P"
expect_eq "apply --json reports the count" "$OUT" '{"ok":true,"changes":0,"dry_run":false}'

# ---- an edited export: dry run, then apply ---------------------------------------------
E=$T_TMP/edited.json
edit "$P" "$E" '
a=d["agents"]
a["bot"]["uid"]='"$U3"'
a["bot"]["gid"]='"$U3"'
a["bot"]["grants"]["gh/other"]={"expires":"2031-06-01","uses":2}
a["bot"]["grants"]["gh/token"]["uses"]=None
del a["bot"]["grants"]["oa/key"]
a["hum"]["projects"]=[]
a["hum"]["enabled"]=True
a["hum"]["cgroup"]="/pc/"
a["new"]={"uid":'"$U4"',"projects":["web"],"grants":{"gh/token":{}}}
d["projects"]["web"]["attach"].remove("oa/key")
d["projects"]["lab"]={"attach":["oa"]}
d["providers"]["oa"]["secrets"]["key"]["canary"]=False
d["providers"]["aws"]={"secrets":{}}'
PLAN="+ provider aws
~ secret oa/key: canary on -> off
+ project lab
+ attachment lab oa
- attachment web oa/key
~ agent bot: gid $U1 -> $U3, uid $U1 -> $U3
~ agent hum: cgroup - -> /pc/
~ agent hum: enabled false -> true
+ agent new: uid $U4
- assignment hum ops
+ assignment new web
+ grant bot gh/other: until 2031-06-01T00:00:00Z, 2 uses
~ grant bot gh/token: uses 5 -> unlimited
- grant bot oa/key
+ grant new gh/token"
n0=$(nev) s0=$(sum)
expect_run "apply --dry-run of an edited export exits 0" 0 "" sa apply --dry-run "$E"
expect_eq "apply --dry-run prints the plan, one line per change, and says nothing was applied" \
	"$OUT" "$PLAN
dry run: 15 changes, nothing applied"
expect_eq "apply --dry-run records no event and changes no byte of the store" "$(nev) $(sum)" "$n0 $s0"
expect_run "apply of the edited export exits 0" 0 "" sa apply "$E"
expect_eq "apply prints the same plan and the count applied" "$OUT" "$PLAN
applied 15 changes"
expect_eq "apply: each change is its own event, as the shadm commands write them" \
	"$(last_events 15)" "provider-add - aws -
canary - oa/key off
project-add - lab -
attach - oa project lab
detach - oa/key project web
agent-set bot - uid=$U3 gid=$U3
agent-set hum - cgroup=/pc/
agent-enable hum - -
agent-add new - -
unassign hum - project ops
assign new - project web
grant bot gh/other 2 uses, until 2031-06-01T00:00:00Z
grant bot gh/token -
revoke bot oa/key -
grant new gh/token -"
expect_eq "apply: exactly those 15 events were added" "$(nev)" "$((n0 + 15))"
expect_eq "apply: shadm grants shows the new limits and the revocation" \
	"$(sa grants | awk 'NR > 1 {print $1, $2, $5, $6}')" \
	"bot gh/other 0/2 live
bot gh/token 0/unlimited live
bot oa/key 0/unlimited revoked
hum gh/other 0/unlimited live
hum oa/key 0/unlimited revoked
new gh/token 0/unlimited live"
expect_eq "apply: the agent's uid changed and it kept its assignment" \
	"$(sa agent show bot | awk '$1 == "uid:" || $1 == "projects:" {print $2}')" "$U3
web"
expect_eq "apply: the store's model is now the file's" \
	"$(sa export)" \
	"$(edit "$E" /dev/stdout '
d["agents"]["new"].update({"cgroup":None,"enabled":True,"exe":None,"exe_sha256":None,"gid":None,"human":False,"rate":None})
d["agents"]["new"]["grants"]["gh/token"]={"expires":None,"uses":None}
d["agents"]["bot"]["grants"]["gh/other"]["expires"]="2031-06-01T00:00:00Z"')"
expect_run "apply of the same file again exits 0" 0 "" sa apply "$E"
expect_eq "apply of the same file again says 'no changes'" "$OUT" "no changes"
edit "$E" "$T_TMP/link.json" 'd["agents"]["bot"]["exe"]="'"$PY"'"'
expect_run "an executable named by a link is compared by its canonical path" 0 "" sa apply "$T_TMP/link.json"
expect_eq "an executable named by a link that resolves to the bound one: no changes" "$OUT" "no changes"
expect_verify "apply: the audit chain is intact"

# ---- removals: apply never removes providers or secrets ----------------------------------
R=$T_TMP/removed.json
sa export >"$T_TMP/now.json"
edit "$T_TMP/now.json" "$R" '
del d["providers"]["aws"]; del d["providers"]["gh"]["secrets"]["other"]
del d["agents"]["new"]; del d["projects"]["ops"]'
expect_run "apply of a file without an agent, a project, a provider and a secret" 0 "" sa apply "$R"
expect_eq "apply removes the agent and the project, and only notes the provider and secret" "$OUT" \
	"! secret gh/other: not in the file: kept (apply never removes secrets)
! provider aws: not in the file: kept with its secrets (apply never removes providers)
- agent new
- project ops
applied 2 changes"
expect_eq "the secret and provider are still there" "$(sa secret list gh | awk 'NR > 1 {print $1 "/" $2}' | tr '\n' ' ')$(sa provider list | awk '$1 == "aws" {print $1}')" \
	"gh/other gh/token aws"
expect_run "apply --json prints one object per change" 0 "" sa --json apply --dry-run "$P"
expect_eq "apply --json: a removed grant and the summary" \
	"$(echo "$OUT" | grep '"name":"bot gh/other"'; echo "$OUT" | tail -n 1)" \
	'{"op":"remove","object":"grant","name":"bot gh/other","detail":null}
{"ok":true,"changes":11,"dry_run":true}'

# ---- bad files: one line naming the line, exit 2, nothing changed -----------------------
sa export >"$P"
n0=$(nev) s0=$(sum)
bad() {   # bad WHAT WANT_STATUS WANT_STDERR FILE
	expect_run "$1" "$2" "$3" sa apply "$4"
	expect_eq "$1: nothing changed" "$(nev) $(sum)" "$n0 $s0"
}
sed '7s/$/ x/' "$P" >"$T_TMP/syntax.json"
bad "a syntax error names the line (jansson's own message)" 2 \
	"shadm: $T_TMP/syntax.json:7: string or '}' expected near 'x'" "$T_TMP/syntax.json"
cp "$P" policy.json
sed -i "s/\"uid\": $U3/\"uid\": \"$U3\"/" policy.json
bad "a uid that is not a number names its line" 2 \
	"shadm: policy.json:$(grep -n "\"uid\": \"$U3\"" policy.json | cut -d: -f1): agent 'bot': uid must be a number from 0 to 4294967294" policy.json
edit "$P" policy.json 'd["agents"]["bot"]["exe_sha256"]="abc"'
bad "an invalid exe digest names its line" 2 \
	"shadm: policy.json:$(grep -n '"exe_sha256": "abc"' policy.json | cut -d: -f1): agent 'bot': exe_sha256 must be null or 64 hex digits" policy.json
edit "$P" policy.json 'd["agents"]["bot"]["exe"]="/nonexistent/pc-bin"'
bad "an executable that does not resolve is refused, as agent add refuses it" 1 \
	"shadm: policy.json:$(grep -n '"/nonexistent/pc-bin"' policy.json | cut -d: -f1): agent 'bot': cannot resolve executable '/nonexistent/pc-bin': no such file or directory" policy.json
edit "$P" policy.json 'd["agents"]["hum"]["humane"]=True'
bad "an unknown key names its line" 2 \
	"shadm: policy.json:$(grep -n '"humane"' policy.json | cut -d: -f1): agent 'hum': unknown key 'humane'" policy.json
edit "$P" policy.json 'd["agents"]["bot"]["grants"]["gh/token"]["expires"]="7d"'
bad "a grant expiry that is a duration, not a date, is refused" 2 \
	"shadm: policy.json:$(grep -n '"expires": "7d"' policy.json | cut -d: -f1): grant of 'gh/token' to 'bot': expires must be null or a date (2027-01-31 or 2027-01-31T12:00:00Z)" policy.json
edit "$P" policy.json 'del d["agents"]'
bad "a file without a section is refused (it would remove everything)" 2 \
	"shadm: policy.json:1: the file: missing key 'agents'" policy.json
printf '{"version": 1,\n "workspace": "default",\n "agents": {}, "agents": {}}\n' >policy.json
bad "a key given twice is refused with its line" 2 \
	"shadm: policy.json:3: duplicate object key near '\"agents\"'" policy.json
edit "$P" policy.json 'd["workspace"]="other"'
bad "a file for another workspace is refused" 1 \
	"shadm: policy.json:$(grep -n '"workspace"' policy.json | cut -d: -f1): the file is for workspace 'other', not 'default' (use -w, or edit \"workspace\")" policy.json
edit "$P" policy.json 'd["providers"]["gh"]["secrets"]["nope"]={"canary":False,"expires":None}'
bad "a secret the store lacks cannot be created: the file has no value" 1 \
	"shadm: policy.json:$(grep -n '"nope"' policy.json | cut -d: -f1): secret 'gh/nope' has no value: set it with 'shadm secret set gh/nope' first" policy.json
edit "$P" policy.json 'd["providers"]["gh"]["secrets"]["token"]["expires"]=None'
bad "an expiry apply cannot change is refused" 1 \
	"shadm: policy.json:$(grep -n '"token"' policy.json | head -n 1 | cut -d: -f1): secret 'gh/token' expires never in the file but 2031-01-01T00:00:00Z in the store: apply cannot change an expiry (store a new version with 'shadm secret set --expires')" policy.json
# valid in form, refused by the store half-way: the uid change before it is rolled back
edit "$P" policy.json 'd["agents"]["bot"]["uid"]='"$U1"'; d["agents"]["hum"]["grants"]["gh/gone"]={}'
bad "a failure in the middle rolls everything back and names the line" 1 \
	"shadm: policy.json:$(grep -n '"gh/gone"' policy.json | cut -d: -f1): no secret 'gh/gone'" policy.json
expect_run "the same failure in a dry run exits 1 too" 1 - sa apply --dry-run policy.json
expect_eq "after the failure the agent keeps its uid" "$(sa agent show bot | awk '$1 == "uid:" {print $2}')" "$U3"
expect_run "apply without FILE is a usage error" 2 "shadm: missing argument FILE for 'apply'" sa apply
expect_run "apply of a missing file fails" 1 \
	"shadm: cannot open '$T_TMP/none.json': no such file or directory" sa apply "$T_TMP/none.json"

# ---- on the mount: a grant removed by apply is refused at the next open ---------------------
sa export >"$P"
start_fs "$CONF" "$LOG" "$MNT"
expect_mount "scopeholdfs mounts $MNT within 10 s" "$MNT" "$LOG"
expect_eq "mount: the agent (uid $U3 since apply) reads gh/token" \
	"$(probe "$U3" open "$MNT/bot/gh/token")" "ok $(printf 'tok-pcSECRET' | wc -c)"
expect_eq "mount: its old uid $U1 is refused" "$(probe "$U1" open "$MNT/bot/gh/token")" "EACCES"
edit "$P" "$E" 'del d["agents"]["bot"]["grants"]["gh/token"]'
expect_run "apply of the file without the grant" 0 "" sa apply "$E"
expect_eq "apply printed the revocation" "$OUT" "- grant bot gh/token
applied 1 change"
expect_eq "mount: the next open of the removed grant is refused (EACCES)" \
	"$(probe "$U3" open "$MNT/bot/gh/token")" "EACCES"
edit "$P" "$E" 'd["agents"]["bot"]["uid"]='"$U1"'; d["agents"]["bot"]["gid"]='"$U1"
expect_run "apply of the file with the agent's uid back at $U1" 0 "" sa apply "$E"
expect_eq "mount: after the uid change uid $U1 reads gh/token" \
	"$(probe "$U1" open "$MNT/bot/gh/token")" "ok $(printf 'tok-pcSECRET' | wc -c)"
expect_eq "mount: and uid $U3 is refused" "$(probe "$U3" open "$MNT/bot/gh/token")" "EACCES"
stop_fs "$FS_PID"
expect_eq "scopeholdfs stops cleanly" "$STOP_RC" "0"
t_finish
