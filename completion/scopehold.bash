# scopehold(1) completion for bash: the agent-side CLI. Subcommands (run,
# inject, ls), their options, and secret names for -e VAR=PROVIDER/NAME.
# An agent is not the operator and cannot ask the store (`shadm` needs the
# root key), so names come from what the calling agent itself sees: the
# providers and secrets under MOUNT/self of the mount given with --mount,
# else /run/scopehold. Without a mount, or for a process that matches no
# agent, there are no names. Installed as
# $(PREFIX)/share/bash-completion/completions/scopehold.

# _scopehold_secrets MOUNT: PROVIDER/NAME of every secret MOUNT/self shows
_scopehold_secrets()
{
	local f
	[[ -d $1/self ]] || return 0
	for f in "$1"/self/*/*; do
		[[ -e $f ]] && printf '%s\n' "${f#"$1/self/"}"
	done
}

_scopehold()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev= i w sub= mount=/run/scopehold dashdash=0
	local opts valopts
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()

	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ -n $sub && $w == -- ]]; then
			dashdash=$i
			break
		fi
		case $w in
		--mount)
			((i + 1 < COMP_CWORD)) && mount=${COMP_WORDS[i + 1]}
			((i++)) ;;
		--mount=*) mount=${w#--mount=} ;;
		-e | --env-file | -i | -o) ((i++)) ;;
		-*) ;;
		*) [[ -z $sub ]] && sub=$w ;;
		esac
	done
	[[ $mount == "~/"* ]] && mount=$HOME/${mount#"~/"}

	# after `run ... --`: the command to run, completed as that command
	if ((dashdash)); then
		if declare -F _command_offset >/dev/null; then
			_command_offset $((dashdash + 1))
		elif ((COMP_CWORD == dashdash + 1)); then
			COMPREPLY=($(compgen -c -- "$cur"))
		else
			compopt -o filenames 2>/dev/null
			COMPREPLY=($(compgen -f -- "$cur"))
		fi
		return 0
	fi

	if [[ -z $sub ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "run inject ls" -- "$cur"))
		fi
		return 0
	fi

	case $sub in
	run) opts="--mount -e --env-file --help --" ;;
	inject) opts="--mount -i -o --force --help" ;;
	ls) opts="--mount --json --help" ;;
	*) return 0 ;;
	esac

	# -e VAR=PROVIDER/NAME: bash splits the word at '=' unless COMP_WORDBREAKS
	# lacks it, so both "VAR" "=" "CUR" and "VAR=CUR" are handled
	if [[ $sub == run ]]; then
		if [[ $prev == = && ${COMP_WORDS[COMP_CWORD - 3]} == -e ]]; then
			COMPREPLY=($(compgen -W "$(_scopehold_secrets "$mount")" -- "$cur"))
			return 0
		fi
		if [[ $cur == = && $prev != -* && ${COMP_WORDS[COMP_CWORD - 2]} == -e ]]; then
			COMPREPLY=($(_scopehold_secrets "$mount"))
			return 0
		fi
		if [[ $prev == -e && $cur == *=* ]]; then
			COMPREPLY=($(compgen -P "${cur%%=*}=" -W "$(_scopehold_secrets "$mount")" -- "${cur#*=}"))
			return 0
		fi
		[[ $prev == -e ]] && return 0   # VAR: the caller's own name
	fi

	case $prev in
	--mount)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -d -- "$cur"))
		return 0 ;;
	--env-file | -i | -o)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0 ;;
	esac
	[[ $cur == -* || -z $cur ]] && COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	return 0
}
complete -F _scopehold scopehold
