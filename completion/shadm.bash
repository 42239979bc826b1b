# shadm(1) completion for bash: global options, commands, subcommands, their
# options, and names read from the store with `shadm ... list` - agents,
# providers, secrets (PROVIDER/NAME), projects, workspaces. The store is
# asked with the same -c CONFIG and -w WORKSPACE as the command line (else
# $SCOPEHOLD_CONFIG or the default configuration), quietly: without a
# readable store there are simply no names. Installed as
# $(PREFIX)/share/bash-completion/completions/shadm.

# _shadm_names SHADM KIND [GLOBAL-OPTION...]: the names of KIND in the store,
# one a line; KIND is agent, provider, project, workspace or secret.
_shadm_names()
{
	local shadm=$1 kind=$2
	shift 2
	# `list` prints a header line, then one row per name (names hold no blanks)
	case $kind in
	secret) timeout 5 "$shadm" "$@" secret list </dev/null 2>/dev/null |
		awk 'NR > 1 { print $1 "/" $2 }' ;;
	*) timeout 5 "$shadm" "$@" "$kind" list </dev/null 2>/dev/null |
		awk 'NR > 1 { print $1 }' ;;
	esac
}

# _shadm_reply KIND CUR SHADM [GLOBAL-OPTION...]: set COMPREPLY for one value
# of KIND: a store name kind, "ref" (PROVIDER or PROVIDER/NAME), "secret-new"
# (PROVIDER/ for a new secret, or an existing one), "file", "event", "command".
_shadm_reply()
{
	local kind=$1 cur=$2 shadm=$3 names
	shift 3
	case $kind in
	file)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur")) ;;
	event)
		# the types the store writes (store/audit.c); --event refuses others
		COMPREPLY=($(compgen -W "init workspace-add workspace-rm provider-add provider-rm project-add
			project-rm attach detach create rotate rm reveal canary agent-add agent-rm agent-enable
			agent-disable agent-rate assign unassign grant revoke sweep approve reject resolve deny
			alert key-rotate key-rekey rollback destroy agent-set" -- "$cur")) ;;
	command)
		COMPREPLY=($(compgen -W "$_shadm_commands" -- "$cur")) ;;
	ref)
		names="$(_shadm_names "$shadm" provider "$@") $(_shadm_names "$shadm" secret "$@")"
		COMPREPLY=($(compgen -W "$names" -- "$cur")) ;;
	secret-new)
		# an existing secret (a rotation), or PROVIDER/ to type a new name after
		names="$(_shadm_names "$shadm" provider "$@" | sed 's|$|/|') $(_shadm_names "$shadm" secret "$@")"
		COMPREPLY=($(compgen -W "$names" -- "$cur"))
		[[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == */ ]] && compopt -o nospace 2>/dev/null ;;
	agent | provider | project | workspace | secret)
		COMPREPLY=($(compgen -W "$(_shadm_names "$shadm" "$kind" "$@")" -- "$cur")) ;;
	*)
		COMPREPLY=() ;;
	esac
}

_shadm_commands="init workspace project provider secret import export apply agent assign unassign grant revoke grants who-can check audit key help"

# _shadm_spec CMD SUB: what CMD [SUB] takes. Sets subs (its subcommands, when
# SUB is still to come), opts (its options), valopts (options taking a value,
# as "option=kind") and kinds (the kind of each positional argument).
_shadm_spec()
{
	subs="" opts="" valopts="" kinds=""
	case $1 in
	init) ;;
	workspace)
		subs="add list rm"
		case $2 in rm) kinds="workspace" ;; esac ;;
	provider)
		subs="add list rm"
		case $2 in rm) kinds="provider"; opts="--yes" ;; esac ;;
	project)
		subs="add list show rm attach detach"
		case $2 in
		show) kinds="project" ;;
		rm) kinds="project"; opts="--yes" ;;
		attach | detach) kinds="project ref" ;;
		esac ;;
	secret)
		subs="set list reveal versions rollback destroy rm"
		case $2 in
		set) kinds="secret-new"; opts="--expires --from-file --allow-empty"
			valopts="--expires=none --from-file=file" ;;
		list) kinds="provider"; opts="--expiring"; valopts="--expiring=none" ;;
		reveal) kinds="secret"; opts="--version"; valopts="--version=none" ;;
		versions) kinds="secret" ;;
		rollback | destroy) kinds="secret none" ;;
		rm) kinds="secret"; opts="--yes" ;;
		esac ;;
	import)
		opts="--env-file --provider --dry-run --expires"
		valopts="--env-file=file --provider=provider --expires=none" ;;
	export) ;;
	apply) kinds="file"; opts="--dry-run" ;;
	agent)
		subs="add list show rm disable enable set"
		case $2 in
		add) kinds="none"; opts="--uid --gid --exe --exe-sha256 --cgroup --human --rate"
			valopts="--uid=none --gid=none --exe=file --exe-sha256=none --cgroup=none --rate=none" ;;
		set) kinds="agent"
			opts="--uid --gid --no-gid --exe --no-exe --exe-sha256 --no-exe-sha256 --cgroup"
			opts="$opts --no-cgroup --human --agent --rate"
			valopts="--uid=none --gid=none --exe=file --exe-sha256=none --cgroup=none --rate=none" ;;
		show | disable | enable) kinds="agent" ;;
		rm) kinds="agent"; opts="--yes" ;;
		esac ;;
	assign | unassign) kinds="agent project" ;;
	grant) kinds="agent secret"; opts="--ttl --uses"; valopts="--ttl=none --uses=none" ;;
	revoke) kinds="agent secret" ;;
	grants) kinds="agent"; opts="--secret --expiring"; valopts="--secret=secret --expiring=none" ;;
	who-can) kinds="secret" ;;
	check) kinds="agent secret"; opts="--uid --gid --exe --cgroup"
		valopts="--uid=none --gid=none --exe=file --cgroup=none" ;;
	audit)
		case $2 in
		verify) opts="--head"; valopts="--head=none" ;;
		head) ;;
		*) subs="verify head"
			opts="--agent --secret --event --since --until --after --limit --host --all-workspaces --follow"
			valopts="--agent=agent --secret=secret --event=event --since=none --until=none --after=none --limit=none --host=none" ;;
		esac ;;
	key)
		subs="rotate rekey"
		case $2 in
		rotate) opts="--rewrap" ;;
		rekey) opts="--new-key-file"; valopts="--new-key-file=file" ;;
		esac ;;
	help) kinds="command" ;;
	esac
}

_shadm()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev= shadm=${1:-shadm}
	local i w cmd= sub= subs opts valopts kinds kind v
	local -a global=() pos=()
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()

	# global options up to the command; -c and -w are passed on to the store queries
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-c | --config | -w | --workspace)
			((i + 1 < COMP_CWORD)) || break
			v=${COMP_WORDS[i + 1]}
			[[ $v == "~/"* ]] && v=$HOME/${v#"~/"}
			global+=("$w" "$v")
			((i++)) ;;
		--config=* | --workspace=* | -c?* | -w?*) global+=("$w") ;;
		-*) ;;
		*) cmd=$w; break ;;
		esac
	done
	if [[ -z $cmd ]]; then
		case $prev in
		-c | --config) _shadm_reply file "$cur" "$shadm"; return 0 ;;
		-w | --workspace) _shadm_reply workspace "$cur" "$shadm" "${global[@]}"; return 0 ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-c --config -w --workspace --json -h --help --version" -- "$cur"))
		else
			_shadm_reply command "$cur" "$shadm"
		fi
		return 0
	fi

	# the words after the command: the subcommand, option values, positionals
	_shadm_spec "$cmd" ""
	for ((i++; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ -n $subs && -z $sub && $w != -* ]]; then
			sub=$w
			_shadm_spec "$cmd" "$sub"
			continue
		fi
		if [[ $w == -* ]]; then
			[[ " $valopts " == *" $w="* ]] && ((i++))
			continue
		fi
		pos+=("$w")
	done

	# the value of an option
	if [[ $prev == -* && " $valopts " == *" $prev="* ]]; then
		kind=${valopts#*"$prev="}
		_shadm_reply "${kind%% *}" "$cur" "$shadm" "${global[@]}"
		return 0
	fi
	if [[ -n $subs && -z $sub ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$subs" -- "$cur"))
		fi
		return 0
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
		return 0
	fi
	read -r -a kinds <<<"$kinds"
	kind=${kinds[${#pos[@]}]:-none}
	_shadm_reply "$kind" "$cur" "$shadm" "${global[@]}"
	return 0
}
complete -F _shadm shadm
