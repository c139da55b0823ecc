#!/bin/sh
# bpconform launcher: the embedded platform's stand-in for the CNB lifecycle's /cnb/lifecycle/launcher.
#
# WHY A SHELL SCRIPT. The real launcher is a static Go binary from buildpacks/lifecycle, which cannot be
# downloaded here. App images are built on our own Debian run images, whose /bin/sh is dash, so this POSIX
# sh script does the same job with no other dependency than the shell's builtins (plus /bin/bash, only for
# the lifecycle's "non-direct" user commands, as the real launcher). It mirrors the lifecycle's launch
# semantics (Platform API >= 0.10): process selection by argv0, user arguments, the launch environment built
# from layers, exec.d, working directory, direct and (Buildpack API < 0.9) non-direct processes, signals
# (it dies of SIGTERM/SIGINT/SIGHUP as the Go launcher does, exit 128+n as PID 1), exit code 82 on launch errors.
#
# WHAT IT READS (written by the embedded platform's exporter, see conformance/platform/launcher.py):
#   $CNB_LIFECYCLE_DIR (default /cnb/lifecycle; a bpconform knob for tests, unknown to the lifecycle)
#     order                 escaped buildpack ids in group order, one per line (the lifecycle reads them
#                           from <layers>/config/metadata.toml; group order can't be recovered from a listing)
#     processes/<type>      one sh file per process type, generated with shlex.quote, defining
#                           _cnb_proc_* variables (command entries, args, working dir, user-args rule, exec-env,
#                           direct)
#     default-process       the default process type (only used in the "no command" error hint)
#   $CNB_LAYERS_DIR (default /layers), $CNB_APP_DIR (default /workspace), $CNB_PLATFORM_API, $CNB_EXEC_ENV.
#
# KNOWN DIFFERENCES FROM THE GO LAUNCHER (all documented, none matters for well-behaved buildpacks):
#   * Variable names must be shell identifiers ([A-Za-z_][A-Za-z0-9_]*). Env files or exec.d keys naming
#     anything else are skipped with a warning on stderr (the Go launcher would set them); container
#     variables with such names are dropped by dash at start-up.
#   * PWD and OLDPWD are removed from the process environment (dash overwrites them at start-up, so the
#     container's values can't be preserved; Docker sets neither), unless a layer env file or exec.d sets them.
#   * exec.d output is parsed with a TOML subset: blank lines, '#' comments, `KEY = "basic string"` (escapes
#     \b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX) and `KEY = 'literal string'`, keys bare or quoted. Multi-line
#     strings, tables, dotted keys and non-string values are rejected with an error naming the program
#     (the lifecycle also rejects the last three). Invalid UTF-8 is not detected.
#   * Platform API < 0.10 argument rules and Windows are not supported. Dot-named layers are visited before
#     other layers (the lifecycle sorts them by bytes, so only names starting with a byte below '.' differ).
#   * exec.d programs run in the background so that signals are handled (see SIGNALS): their fd 3 is a private
#     file in $TMPDIR or /tmp (removed with /bin/rm or /usr/bin/rm afterwards, left empty if neither exists),
#     their stdin is /dev/null (as with the Go launcher's exec.Cmd) and, as for any background command of a
#     non-interactive shell, they start with SIGINT and SIGQUIT ignored. Without a writable temp dir (a
#     read-only root file system) exec.d output is read through a command substitution and a signal waits
#     until the program ends.
#   * The bash script for non-direct launches quotes the profile paths and the working dir it pastes in, where
#     the lifecycle writes `source "<path>"` and `cd "<dir>"` (launch/bash.go:25-28): a layer name, process
#     type or working dir containing `"`, `$` or a backquote is data here and shell syntax there.
#   * When the launcher itself fails "read metadata" (no order file) it exits 1, like the lifecycle; every
#     other launcher failure exits 82 (the lifecycle's LaunchError).
#
# Internal names all start with _cnb_ and are never exported, so they don't leak into the process.

_cnb_nl='
'
_cnb_tab=$(printf '\t')
_cnb_cr=$(printf '\r')

# The lifecycle's LaunchError exit code; launcher.py rewrites this line from spec.ExitCode.LAUNCH_ERROR.
_cnb_launch_error=82

_cnb_fail() {
    _cnb_tmp_cleanup
    printf 'ERROR: failed to launch: %s\n' "$1" >&2
    if [ -n "${2-}" ]; then
        printf '  hint: %s\n' "$2" >&2
    fi
    exit "${3:-$_cnb_launch_error}"
}

_cnb_warn() {
    printf 'Warning: %s\n' "$1" >&2
}

# True when $1 can be used as a shell variable name (and therefore safely inside eval).
_cnb_is_name() {
    case $1 in
        '' | [0-9]* | *[!A-Za-z0-9_]*) return 1 ;;
    esac
    return 0
}

# The characters a process type may not contain: the lifecycle's rule (layers/launcher.go, validateProcessType).
# launcher.py rewrites this line from conformance/platform/spec.py (PROCESS_TYPE_FORBIDDEN), where it is defined.
# shellcheck disable=SC1003 # a backslash at the end of a single-quoted string is meant
_cnb_type_forbidden='/><:|&\'

# True when $1 is a valid process type (spec.py's rule: none of the characters above, no control characters,
# never '.' or '..'). Any other character is allowed ('+', spaces, '$', quotes, ';', '*'): a type is only ever
# used quoted, as data.
_cnb_is_type() {
    case $1 in
        '' | . | .. | *[[:cntrl:]]*) return 1 ;;
    esac
    _cnb_rest=$_cnb_type_forbidden
    while [ -n "$_cnb_rest" ]; do
        _cnb_char=${_cnb_rest%"${_cnb_rest#?}"}
        case $1 in
            *"$_cnb_char"*) return 1 ;;
        esac
        _cnb_rest=${_cnb_rest#?}
    done
    return 0
}

# _cnb_squote TEXT -> _cnb_quoted: TEXT as one single-quoted shell word ('\'' for each quote), so that a path
# made of buildpack-chosen names (layer, process type, working dir) is data in the generated bash script.
_cnb_squote() {
    _cnb_rest=$1
    _cnb_quoted=
    while :; do
        case $_cnb_rest in
            *\'*)
                _cnb_quoted="$_cnb_quoted${_cnb_rest%%\'*}'\\''"
                _cnb_rest=${_cnb_rest#*\'}
                ;;
            *)
                _cnb_quoted="'$_cnb_quoted$_cnb_rest'"
                return 0
                ;;
        esac
    done
}

# Reads file $1 into _cnb_value byte for byte (trailing newlines included), without any external command:
# the buildpack's PATH may already shadow cat by the time this runs.
_cnb_read_file() {
    _cnb_value=
    _cnb_line=
    [ -f "$1" ] && [ -r "$1" ] || return 1
    while IFS= read -r _cnb_line; do
        _cnb_value=$_cnb_value$_cnb_line$_cnb_nl
        _cnb_line=
    done <"$1" || return 1
    _cnb_value=$_cnb_value$_cnb_line
}

# _cnb_get NAME -> _cnb_cur (empty when unset, as the lifecycle's Vars.Get). NAME is validated by callers.
_cnb_get() {
    eval "_cnb_cur=\${$1-}"
}

_cnb_set() {
    export "$1=$2"
}

# Removes duplicate and trailing slashes, as Go's filepath.Join/Abs would.
_cnb_clean_path() {
    _cnb_clean=$1
    while :; do
        case $_cnb_clean in
            *//*) _cnb_clean=${_cnb_clean%%//*}/${_cnb_clean#*//} ;;
            *) break ;;
        esac
    done
    case $_cnb_clean in
        ?*/) _cnb_clean=${_cnb_clean%/} ;;
    esac
}

# cd without touching PWD/OLDPWD as the process will see them (the Go launcher's chdir leaves them alone).
_cnb_cd() {
    _cnb_pwd_set=${PWD+x}
    _cnb_pwd_val=${PWD-}
    _cnb_oldpwd_set=${OLDPWD+x}
    _cnb_oldpwd_val=${OLDPWD-}
    case $1 in
        /*) _cnb_target=$1 ;;
        *) _cnb_target=./$1 ;; # a leading ./ keeps CDPATH (maybe set by a buildpack) out of the way
    esac
    _cnb_cd_rc=0
    cd -P -- "$_cnb_target" 2>/dev/null || _cnb_cd_rc=$?
    if [ -n "$_cnb_pwd_set" ]; then export "PWD=$_cnb_pwd_val"; else unset PWD; fi
    if [ -n "$_cnb_oldpwd_set" ]; then export "OLDPWD=$_cnb_oldpwd_val"; else unset OLDPWD; fi
    return "$_cnb_cd_rc"
}

# ---------------------------------------------------------------------------------------------------------
# Directory walking, in the lifecycle's order (os.ReadDir sorts names by bytes; so does dash's glob).

# _cnb_each_layer BP_DIR ACTION: ACTION LAYER_DIR for every directory (not symlink) in BP_DIR.
_cnb_each_layer() {
    for _cnb_layer in "$1"/.[!.]* "$1"/..?* "$1"/*; do
        if [ -d "$_cnb_layer" ] && [ ! -L "$_cnb_layer" ]; then
            "$2" "$_cnb_layer"
        fi
    done
}

# _cnb_each_bp ACTION: ACTION BP_DIR for every buildpack in group order whose layers dir exists.
_cnb_each_bp() {
    _cnb_bp_rest=$_cnb_order
    while [ -n "$_cnb_bp_rest" ]; do
        case $_cnb_bp_rest in
            *"$_cnb_nl"*)
                _cnb_bp_id=${_cnb_bp_rest%%"$_cnb_nl"*}
                _cnb_bp_rest=${_cnb_bp_rest#*"$_cnb_nl"}
                ;;
            *)
                _cnb_bp_id=$_cnb_bp_rest
                _cnb_bp_rest=
                ;;
        esac
        case $_cnb_bp_id in
            '' | . | .. | */*) continue ;;
        esac
        [ -d "$_cnb_layers_dir/$_cnb_bp_id" ] || continue
        "$1" "$_cnb_layers_dir/$_cnb_bp_id"
    done
}

# ---------------------------------------------------------------------------------------------------------
# The launch environment (lifecycle env.Env with the POSIX launch root-dir map).

_cnb_prepend_path() { # NAME DIR: DIR[:old]
    _cnb_get "$1"
    if [ -n "$_cnb_cur" ]; then _cnb_set "$1" "$2:$_cnb_cur"; else _cnb_set "$1" "$2"; fi
}

_cnb_layer_root() {
    if [ -e "$1/bin" ]; then _cnb_prepend_path PATH "$1/bin"; fi
    if [ -e "$1/lib" ]; then _cnb_prepend_path LD_LIBRARY_PATH "$1/lib"; fi
}

# _cnb_delim DIR NAME DEFAULT -> _cnb_delim_value: the contents of DIR/NAME.delim, or DEFAULT.
_cnb_delim() {
    if _cnb_read_file "$1/$2.delim"; then
        _cnb_delim_value=$_cnb_value
    else
        _cnb_delim_value=$3
    fi
}

# Applies every env file of one directory (lifecycle env.AddEnvDir with the "override" default action).
_cnb_env_dir() {
    [ -e "$1" ] || return 0
    [ -d "$1" ] || _cnb_fail "modify env: apply env files from dir '$1': not a directory"
    for _cnb_file in "$1"/.[!.]* "$1"/..?* "$1"/*; do
        if [ -L "$_cnb_file" ]; then
            [ -e "$_cnb_file" ] || _cnb_fail "modify env: apply env files from dir '$1': broken symlink '$_cnb_file'"
        elif [ ! -e "$_cnb_file" ]; then
            continue # an unmatched glob pattern
        fi
        [ -d "$_cnb_file" ] && continue
        _cnb_base=${_cnb_file##*/}
        _cnb_name=${_cnb_base%%.*}
        case $_cnb_base in
            *.*) _cnb_action=${_cnb_base#*.} ;;
            *) _cnb_action=override ;;
        esac
        case $_cnb_action in
            prepend | append | override | default | '') ;;
            *) continue ;; # .delim and unknown suffixes are not actions
        esac
        if ! _cnb_is_name "$_cnb_name"; then
            _cnb_warn "skipping env file '$_cnb_file': '$_cnb_name' is not a valid shell variable name"
            continue
        fi
        _cnb_read_file "$_cnb_file" || _cnb_fail "modify env: apply env files from dir '$1': cannot read '$_cnb_file'"
        _cnb_new=$_cnb_value
        _cnb_get "$_cnb_name"
        case $_cnb_action in
            override)
                _cnb_set "$_cnb_name" "$_cnb_new"
                ;;
            default)
                [ -n "$_cnb_cur" ] || _cnb_set "$_cnb_name" "$_cnb_new"
                ;;
            prepend | '')
                if [ "$_cnb_action" = prepend ]; then _cnb_delim "$1" "$_cnb_name" ''; else _cnb_delim "$1" "$_cnb_name" ':'; fi
                if [ -n "$_cnb_cur" ]; then _cnb_new=$_cnb_new$_cnb_delim_value$_cnb_cur; fi
                _cnb_set "$_cnb_name" "$_cnb_new"
                ;;
            append)
                _cnb_delim "$1" "$_cnb_name" ''
                if [ -n "$_cnb_cur" ]; then _cnb_new=$_cnb_cur$_cnb_delim_value$_cnb_new; fi
                _cnb_set "$_cnb_name" "$_cnb_new"
                ;;
        esac
    done
}

_cnb_layer_env() {
    _cnb_env_dir "$1/env"
    _cnb_env_dir "$1/env.launch"
    if [ -n "$_cnb_type" ]; then _cnb_env_dir "$1/env.launch/$_cnb_type"; fi
}

# All root dirs of a buildpack's layers first, then each layer's env files (launch.Launcher.doEnv).
_cnb_bp_env() {
    _cnb_each_layer "$1" _cnb_layer_root
    _cnb_each_layer "$1" _cnb_layer_env
}

# ---------------------------------------------------------------------------------------------------------
# exec.d: run each program with fd 3 on a pipe, parse its TOML, override the variables it names.

_cnb_toml_error() {
    _cnb_fail "exec.d: failed to decode output from exec.d file at path '$_cnb_execd': line $_cnb_lineno: $1" \
        "exec.d programs must write lines like NAME = \"value\" to fd 3"
}

_cnb_skip_ws() {
    _cnb_ws=${_cnb_s%%[!"$_cnb_tab" ]*}
    _cnb_s=${_cnb_s#"$_cnb_ws"}
}

# Appends the UTF-8 encoding of hex code point $1 to _cnb_str.
_cnb_utf8() {
    _cnb_cp=$((0x$1))
    if [ "$_cnb_cp" -eq 0 ]; then
        _cnb_toml_error "NUL characters can't be put in the environment"
    elif [ "$_cnb_cp" -ge 55296 ] && [ "$_cnb_cp" -le 57343 ] || [ "$_cnb_cp" -gt 1114111 ]; then
        _cnb_toml_error "invalid unicode escape '\\u$1'"
    elif [ "$_cnb_cp" -lt 128 ]; then
        _cnb_fmt=$(printf '\\%o' "$_cnb_cp")
    elif [ "$_cnb_cp" -lt 2048 ]; then
        _cnb_fmt=$(printf '\\%o\\%o' $((192 | _cnb_cp >> 6)) $((128 | (_cnb_cp & 63))))
    elif [ "$_cnb_cp" -lt 65536 ]; then
        _cnb_fmt=$(printf '\\%o\\%o\\%o' $((224 | _cnb_cp >> 12)) $((128 | (_cnb_cp >> 6 & 63))) \
            $((128 | (_cnb_cp & 63))))
    else
        _cnb_fmt=$(printf '\\%o\\%o\\%o\\%o' $((240 | _cnb_cp >> 18)) $((128 | (_cnb_cp >> 12 & 63))) \
            $((128 | (_cnb_cp >> 6 & 63))) $((128 | (_cnb_cp & 63))))
    fi
    # shellcheck disable=SC2059 # the format is the octal escapes computed above
    _cnb_bytes=$(printf "$_cnb_fmt"; printf x)
    _cnb_str=$_cnb_str${_cnb_bytes%x}
}

# _cnb_s starts after an opening double quote; leaves the decoded string in _cnb_str, the rest in _cnb_s.
_cnb_basic_string() {
    _cnb_str=
    while :; do
        _cnb_chunk=${_cnb_s%%[\\\"]*}
        _cnb_str=$_cnb_str$_cnb_chunk
        _cnb_s=${_cnb_s#"$_cnb_chunk"}
        case $_cnb_s in
            '') _cnb_toml_error "unterminated basic string" ;;
            \"*)
                _cnb_s=${_cnb_s#?}
                return 0
                ;;
        esac
        _cnb_s=${_cnb_s#?} # the backslash
        case $_cnb_s in
            b*) _cnb_str=$_cnb_str$(printf '\b') ;;
            t*) _cnb_str=$_cnb_str$_cnb_tab ;;
            n*) _cnb_str=$_cnb_str$_cnb_nl ;;
            f*) _cnb_str=$_cnb_str$(printf '\f') ;;
            r*) _cnb_str=$_cnb_str$_cnb_cr ;;
            \"*) _cnb_str=$_cnb_str\" ;;
            \\*) _cnb_str=$_cnb_str\\ ;;
            u[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]*)
                _cnb_hex=${_cnb_s#u}
                _cnb_rest4=${_cnb_hex#????}
                _cnb_utf8 "${_cnb_hex%"$_cnb_rest4"}"
                _cnb_s=u$_cnb_rest4
                ;;
            U[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]*)
                _cnb_hex=${_cnb_s#U}
                _cnb_rest8=${_cnb_hex#????????}
                _cnb_utf8 "${_cnb_hex%"$_cnb_rest8"}"
                _cnb_s=U$_cnb_rest8
                ;;
            *) _cnb_toml_error "invalid escape sequence in basic string" ;;
        esac
        _cnb_s=${_cnb_s#?}
    done
}

# _cnb_s starts after an opening single quote.
_cnb_literal_string() {
    case $_cnb_s in
        *\'*) ;;
        *) _cnb_toml_error "unterminated literal string" ;;
    esac
    _cnb_str=${_cnb_s%%\'*}
    _cnb_s=${_cnb_s#*\'}
}

# Parses one line of exec.d output; a key/value pair is queued in _cnb_kv_name_N/_cnb_kv_value_N.
_cnb_toml_line() {
    _cnb_s=${1%"$_cnb_cr"}
    _cnb_notab=$_cnb_s
    while :; do
        case $_cnb_notab in
            *"$_cnb_tab"*) _cnb_notab=${_cnb_notab%%"$_cnb_tab"*}${_cnb_notab#*"$_cnb_tab"} ;;
            *) break ;;
        esac
    done
    case $_cnb_notab in
        *[[:cntrl:]]*) _cnb_toml_error "control characters must be escaped" ;;
    esac
    _cnb_skip_ws
    case $_cnb_s in
        '' | \#*) return 0 ;;
        \[*) _cnb_toml_error "tables are not supported, only top-level NAME = \"value\" pairs" ;;
        \"*)
            _cnb_s=${_cnb_s#?}
            _cnb_basic_string
            _cnb_key=$_cnb_str
            ;;
        \'*)
            _cnb_s=${_cnb_s#?}
            _cnb_literal_string
            _cnb_key=$_cnb_str
            ;;
        *)
            _cnb_key=${_cnb_s%%[!A-Za-z0-9_-]*}
            [ -n "$_cnb_key" ] || _cnb_toml_error "expected a key"
            _cnb_s=${_cnb_s#"$_cnb_key"}
            ;;
    esac
    _cnb_skip_ws
    case $_cnb_s in
        .*) _cnb_toml_error "dotted keys are not supported" ;;
        =*) _cnb_s=${_cnb_s#=} ;;
        *) _cnb_toml_error "expected '=' after key '$_cnb_key'" ;;
    esac
    _cnb_skip_ws
    case $_cnb_s in
        \"\"\"* | \'\'\'*) _cnb_toml_error "multi-line strings are not supported" ;;
        \"*)
            _cnb_s=${_cnb_s#?}
            _cnb_basic_string
            ;;
        \'*)
            _cnb_s=${_cnb_s#?}
            _cnb_literal_string
            ;;
        '') _cnb_toml_error "missing value for key '$_cnb_key'" ;;
        *) _cnb_toml_error "the value of '$_cnb_key' must be a string" ;;
    esac
    _cnb_skip_ws
    case $_cnb_s in
        '' | \#*) ;;
        *) _cnb_toml_error "unexpected text after the value of '$_cnb_key'" ;;
    esac
    _cnb_i=0
    _cnb_prev=
    while [ "$_cnb_i" -lt "$_cnb_kv_count" ]; do
        _cnb_i=$((_cnb_i + 1))
        eval "_cnb_prev=\$_cnb_kv_name_$_cnb_i"
        [ "$_cnb_prev" != "$_cnb_key" ] || _cnb_toml_error "key '$_cnb_key' is defined twice"
    done
    _cnb_kv_count=$((_cnb_kv_count + 1))
    eval "_cnb_kv_name_$_cnb_kv_count=\$_cnb_key; _cnb_kv_value_$_cnb_kv_count=\$_cnb_str"
}

# Decodes the whole output first, then applies it: a malformed output changes nothing.
_cnb_apply_execd_output() {
    _cnb_kv_count=0
    _cnb_lineno=0
    _cnb_out_rest=$1
    while [ -n "$_cnb_out_rest" ]; do
        case $_cnb_out_rest in
            *"$_cnb_nl"*)
                _cnb_out_line=${_cnb_out_rest%%"$_cnb_nl"*}
                _cnb_out_rest=${_cnb_out_rest#*"$_cnb_nl"}
                ;;
            *)
                _cnb_out_line=$_cnb_out_rest
                _cnb_out_rest=
                ;;
        esac
        _cnb_lineno=$((_cnb_lineno + 1))
        _cnb_toml_line "$_cnb_out_line"
    done
    _cnb_i=0
    while [ "$_cnb_i" -lt "$_cnb_kv_count" ]; do
        _cnb_i=$((_cnb_i + 1))
        eval "_cnb_key=\$_cnb_kv_name_$_cnb_i; _cnb_str=\$_cnb_kv_value_$_cnb_i"
        if _cnb_is_name "$_cnb_key"; then
            _cnb_set "$_cnb_key" "$_cnb_str"
        else
            _cnb_warn "exec.d file '$_cnb_execd': skipping '$_cnb_key': not a valid shell variable name"
        fi
    done
}

# A private file for exec.d output, so that the launcher can `wait` for each program (see SIGNALS below).
# Created once per launch, exclusively (noclobber: O_EXCL), in $TMPDIR or /tmp as the launcher found them.
# None when no such dir is writable: then the output is read through a command substitution as before.
_cnb_tmp_ready() {
    [ -z "$_cnb_tmp" ] || return 0
    [ -z "$_cnb_tmp_failed" ] || return 1
    _cnb_tmp_failed=1
    [ -d "$_cnb_tmp_dir" ] && [ -w "$_cnb_tmp_dir" ] || return 1
    _cnb_i=0
    while [ "$_cnb_i" -lt 10 ]; do
        _cnb_try=$_cnb_tmp_dir/.cnb-launcher-execd.$$.$_cnb_i
        if (set -C && : >"$_cnb_try") 2>/dev/null && [ -f "$_cnb_try" ] && [ ! -L "$_cnb_try" ]; then
            _cnb_tmp=$_cnb_try
            _cnb_tmp_failed=
            return 0
        fi
        _cnb_i=$((_cnb_i + 1))
    done
    return 1
}

# Removes the exec.d output file (with rm from the image, by absolute path: the launch PATH is the buildpacks').
_cnb_tmp_cleanup() {
    [ -n "$_cnb_tmp" ] || return 0
    : 2>/dev/null >"$_cnb_tmp" # left empty if it cannot be removed
    for _cnb_rm in /bin/rm /usr/bin/rm; do
        if [ -x "$_cnb_rm" ]; then
            "$_cnb_rm" -f -- "$_cnb_tmp" 2>/dev/null && break
        fi
    done
    _cnb_tmp=
}

_cnb_run_execd() {
    _cnb_execd=$1
    if _cnb_tmp_ready; then
        # In the background, so that the launcher waits in `wait`, where a signal's trap runs at once.
        # Like the Go launcher's exec.Cmd, the program reads /dev/null (asynchronous lists always do).
        : >"$_cnb_tmp"
        "$_cnb_execd" 3>"$_cnb_tmp" &
        _cnb_child=$!
        _cnb_rc=0
        wait "$_cnb_child" || _cnb_rc=$?
        _cnb_child=
        _cnb_read_file "$_cnb_tmp" || _cnb_fail "exec.d: failed to read output from exec.d file at path '$_cnb_execd'"
        _cnb_out=$_cnb_value
    else
        # fd 3 -> the command substitution's pipe, stdout -> our stdout (saved on fd 4, closed for the program).
        {
            _cnb_out=$("$_cnb_execd" 3>&1 1>&4 4>&-)
            _cnb_rc=$?
        } 4>&1
    fi
    if [ "$_cnb_rc" -ne 0 ]; then
        _cnb_fail "exec.d: failed to execute exec.d file at path '$_cnb_execd': exit status $_cnb_rc"
    fi
    _cnb_apply_execd_output "$_cnb_out"
}

# Every non-directory entry of a dir (lifecycle eachFile), in name order.
_cnb_execd_dir() {
    for _cnb_prog in "$1"/.[!.]* "$1"/..?* "$1"/*; do
        [ -e "$_cnb_prog" ] || [ -L "$_cnb_prog" ] || continue
        [ -d "$_cnb_prog" ] && [ ! -L "$_cnb_prog" ] && continue
        _cnb_run_execd "$_cnb_prog"
    done
}

_cnb_layer_execd() {
    _cnb_execd_dir "$1/exec.d"
    if [ -n "$_cnb_type" ]; then _cnb_execd_dir "$1/exec.d/$_cnb_type"; fi
}

_cnb_bp_execd() {
    _cnb_each_layer "$1" _cnb_layer_execd
}

# ---------------------------------------------------------------------------------------------------------
# Launching.

# Take the next entry off `_cnb_path_rest` into `_cnb_path_dir`; `_cnb_path_more` is empty after the last.
_cnb_path_next() {
    case $_cnb_path_rest in
        *:*)
            _cnb_path_dir=${_cnb_path_rest%%:*}
            _cnb_path_rest=${_cnb_path_rest#*:}
            _cnb_path_more=1
            ;;
        *)
            _cnb_path_dir=$_cnb_path_rest
            _cnb_path_more=
            ;;
    esac
}

# Go's exec.LookPath on the launch PATH: a name with a slash is used as is; otherwise the first executable
# regular file on PATH, refusing one found through a relative PATH entry (Go's ErrDot).
_cnb_lookpath() {
    case $1 in
        */*)
            [ -f "$1" ] && [ -x "$1" ] && return 0
            _cnb_lookpath_error="exec: \"$1\": no such executable file"
            return 1
            ;;
    esac
    _cnb_path_rest=${PATH-}
    while :; do
        _cnb_path_next
        [ -n "$_cnb_path_dir" ] || _cnb_path_dir=.
        if [ -f "$_cnb_path_dir/$1" ] && [ -x "$_cnb_path_dir/$1" ]; then
            case $_cnb_path_dir in
                /*) return 0 ;;
            esac
            _cnb_lookpath_error="exec: \"$1\": cannot run executable found relative to current directory"
            return 1
        fi
        [ -n "$_cnb_path_more" ] || break
    done
    _cnb_lookpath_error="exec: \"$1\": executable file not found in \$PATH"
    return 1
}

_cnb_launch_direct() {
    if [ "$#" -eq 0 ]; then
        _cnb_fail "no command provided for process type \"$_cnb_type\""
    fi
    _cnb_lookpath "$1" || _cnb_fail "path lookup: $_cnb_lookpath_error" \
        "the command must be an executable on the launch PATH: $PATH"
    _cnb_cd "$_cnb_wd" || _cnb_fail "change directory: cannot cd to '$_cnb_wd'"
    exec "$@"
}

# The lifecycle's bash launch for user commands without `--`: profile scripts are sourced, then the command
# runs as a bash script (no args) or as tokens each expanded by bash (with args).
_cnb_launch_with_shell() {
    _cnb_script=
    _cnb_each_bp _cnb_bp_profiles
    if [ -e .profile ] && [ ! -d .profile ]; then
        _cnb_script="${_cnb_script}source \".profile\"$_cnb_nl"
    fi
    _cnb_squote "$_cnb_wd"
    _cnb_script="${_cnb_script}cd $_cnb_quoted$_cnb_nl"
    _cnb_command=$1
    shift
    if [ "$#" -eq 0 ]; then
        # shellcheck disable=SC2016 # $@ is for bash to expand
        _cnb_script="${_cnb_script}exec bash -c \"\$@\""
    else
        # shellcheck disable=SC2016 # the tokens are for bash to expand
        _cnb_tokens='"$(eval echo \"$0\")"'
        _cnb_i=0
        while [ "$_cnb_i" -lt "$#" ]; do
            _cnb_i=$((_cnb_i + 1))
            _cnb_tokens="$_cnb_tokens \"\$(eval echo \\\"\${$_cnb_i}\\\")\""
        done
        _cnb_script="${_cnb_script}exec bash -c '$_cnb_tokens' \"\${@:1}\""
    fi
    [ -x /bin/bash ] || _cnb_fail "bash exec: /bin/bash not found" \
        "without bash in the run image, run a direct command: launcher -- <command> [args...]"
    exec /bin/bash -c "$_cnb_script" "$_cnb_self" "$_cnb_command" "$@"
}

_cnb_profile_dir() {
    for _cnb_prof in "$1"/.[!.]* "$1"/..?* "$1"/*; do
        [ -e "$_cnb_prof" ] || [ -L "$_cnb_prof" ] || continue
        [ -d "$_cnb_prof" ] && [ ! -L "$_cnb_prof" ] && continue
        _cnb_squote "$_cnb_prof"
        _cnb_script="${_cnb_script}source $_cnb_quoted$_cnb_nl"
    done
}

_cnb_layer_profiles() {
    _cnb_profile_dir "$1/profile.d"
    if [ -n "$_cnb_type" ]; then _cnb_profile_dir "$1/profile.d/$_cnb_type"; fi
}

_cnb_bp_profiles() {
    _cnb_each_layer "$1" _cnb_layer_profiles
}

# True when the platform API ($1, "X.Y") is at least 0.$2.
_cnb_platform_api_at_least_0() {
    case $1 in
        [0-9]*.[0-9]*) ;;
        *) return 1 ;;
    esac
    _cnb_major=${1%%.*}
    _cnb_minor=${1#*.}
    case $_cnb_major$_cnb_minor in
        *[!0-9]*) return 1 ;;
    esac
    [ "$_cnb_major" -gt 0 ] || [ "$_cnb_minor" -ge "$2" ]
}

_cnb_process_eligible() {
    _cnb_platform_api_at_least_0 "$_cnb_platform_api" 15 || return 0
    [ -n "$_cnb_proc_exec_env" ] || return 0
    case "$_cnb_nl$_cnb_proc_exec_env$_cnb_nl" in
        *"$_cnb_nl*$_cnb_nl"* | *"$_cnb_nl$_cnb_exec_env$_cnb_nl"*) return 0 ;;
    esac
    return 1
}

# ---------------------------------------------------------------------------------------------------------
# Main.

_cnb_lifecycle_dir=${CNB_LIFECYCLE_DIR:-/cnb/lifecycle}
_cnb_process_dir=/cnb/process
_cnb_layers_dir=${CNB_LAYERS_DIR:-/layers}
_cnb_app_dir=${CNB_APP_DIR:-/workspace}
_cnb_platform_api=${CNB_PLATFORM_API-}
_cnb_exec_env=${CNB_EXEC_ENV:-production}
_cnb_self=$0
_cnb_tmp_dir=${TMPDIR:-/tmp}
_cnb_tmp=
_cnb_tmp_failed=
_cnb_child=

# SIGNALS. In a container the launcher is PID 1 until it execs the process, and the kernel drops every signal
# PID 1 has no handler for: without these traps `docker stop` would wait for its timeout and SIGKILL while an
# exec.d program runs. The Go launcher dies on SIGTERM, SIGINT and SIGHUP (the Go runtime's default), so this
# one stops the running exec.d program, removes its output file and exits 128 + the signal's number (143 for
# SIGTERM, 130 for SIGINT); when it is not PID 1 it dies of the signal itself, as a Go program would. A shell
# runs a trap only between commands or while it is in `wait`, which is why exec.d programs run in the
# background (see _cnb_run_execd). Profile scripts are sourced by bash after the exec, so bash is PID 1 then,
# exactly as with the Go launcher (launch/bash.go).
_cnb_on_signal() { # NAME NUMBER
    trap - "$1"
    if [ -n "$_cnb_child" ]; then kill -TERM "$_cnb_child" 2>/dev/null; fi
    _cnb_tmp_cleanup
    kill "-$1" "$$" 2>/dev/null # not PID 1: die of the signal
    exit $((128 + $2))          # PID 1: the kernel dropped it
}
trap '_cnb_on_signal TERM 15' TERM
trap '_cnb_on_signal INT 2' INT
trap '_cnb_on_signal HUP 1' HUP

if [ -n "${CNB_PROCESS_TYPE-}" ]; then
    _cnb_warn "CNB_PROCESS_TYPE is not supported in Platform API ${_cnb_platform_api:-(unset)}"
    _cnb_warn "Run with ENTRYPOINT '$CNB_PROCESS_TYPE' to invoke the '$CNB_PROCESS_TYPE' process type"
fi

# The launch environment excludes the lifecycle's own inputs and its directories on PATH.
unset CNB_LAYERS_DIR CNB_APP_DIR CNB_PROCESS_TYPE CNB_PLATFORM_API CNB_DEPRECATION_MODE CNB_LIFECYCLE_DIR
unset PWD OLDPWD
if [ -n "${PATH+x}" ]; then
    _cnb_path_rest=$PATH
    _cnb_path_new=
    _cnb_path_first=1
    while :; do
        _cnb_path_next
        if [ "$_cnb_path_dir" != "$_cnb_process_dir" ] && [ "$_cnb_path_dir" != "$_cnb_lifecycle_dir" ]; then
            if [ -n "$_cnb_path_first" ]; then
                _cnb_path_new=$_cnb_path_dir
                _cnb_path_first=
            else
                _cnb_path_new=$_cnb_path_new:$_cnb_path_dir
            fi
        fi
        [ -n "$_cnb_path_more" ] || break
    done
    export "PATH=$_cnb_path_new"
fi

_cnb_read_file "$_cnb_lifecycle_dir/order" || _cnb_fail "read metadata: cannot read '$_cnb_lifecycle_dir/order'" \
    "this image was not exported by the bpconform platform, or its launcher files are missing" 1
_cnb_order=$_cnb_value

# Process selection: argv0 names a process type (the /cnb/process/<type> symlinks), else a user command.
_cnb_type=
_cnb_argv0_base=${0##*/}
if _cnb_is_type "$_cnb_argv0_base" && [ -f "$_cnb_lifecycle_dir/processes/$_cnb_argv0_base" ]; then
    _cnb_type=$_cnb_argv0_base
fi

if [ -n "$_cnb_type" ]; then
    _cnb_proc_command_count=0
    _cnb_proc_args_count=0
    _cnb_proc_working_dir=
    _cnb_proc_user_args=replace
    _cnb_proc_exec_env=
    _cnb_proc_direct=1
    # shellcheck disable=SC1090 # generated by the exporter with shlex.quote
    . "$_cnb_lifecycle_dir/processes/$_cnb_type" ||
        _cnb_fail "determine start command: cannot read process type '$_cnb_type'"
    _cnb_process_eligible || _cnb_fail "determine start command: process type $_cnb_type was not found" \
        "process '$_cnb_type' is not available in execution environment '$_cnb_exec_env' (CNB_EXEC_ENV)"
    # Platform API >= 0.10: extra command entries are always passed; user args replace the overridable args
    # (or, for a single-entry command from a buildpack API < 0.9, are appended to them).
    _cnb_keep_args=1
    if [ "$#" -gt 0 ]; then
        if [ "$_cnb_proc_command_count" -gt 1 ] || [ "$_cnb_proc_user_args" = replace ]; then
            _cnb_keep_args=
        fi
    fi
    if [ -n "$_cnb_keep_args" ]; then
        _cnb_i=$_cnb_proc_args_count
        while [ "$_cnb_i" -gt 0 ]; do
            eval "set -- \"\$_cnb_proc_args_$_cnb_i\" \"\$@\""
            _cnb_i=$((_cnb_i - 1))
        done
    fi
    _cnb_i=$_cnb_proc_command_count
    while [ "$_cnb_i" -gt 0 ]; do
        eval "set -- \"\$_cnb_proc_command_$_cnb_i\" \"\$@\""
        _cnb_i=$((_cnb_i - 1))
    done
    # direct = false (Buildpack API < 0.9 only): through bash with profiles, as a user command would be
    # (launch/launcher.go LaunchProcess -> launchWithShell; the command is its single string).
    _cnb_direct=
    [ "$_cnb_proc_direct" = 0 ] || _cnb_direct=1
    _cnb_wd=$_cnb_proc_working_dir
elif [ "$#" -eq 0 ]; then
    _cnb_hint="pass a command (launcher -- <command> [args...])"
    if _cnb_read_file "$_cnb_lifecycle_dir/default-process"; then
        _cnb_hint="run the default process with ENTRYPOINT $_cnb_process_dir/${_cnb_value%"$_cnb_nl"}, or $_cnb_hint"
    fi
    _cnb_fail "determine start command: when there is no default process a command is required" "$_cnb_hint"
elif [ "$#" -gt 1 ] && [ "$1" = "--" ]; then
    shift
    _cnb_direct=1
    _cnb_wd=
else
    _cnb_direct=
    _cnb_wd=
fi

_cnb_cd "$_cnb_app_dir" || _cnb_fail "change to app directory: cannot cd to '$_cnb_app_dir'"
[ -n "$_cnb_wd" ] || _cnb_wd=$_cnb_app_dir

case $_cnb_layers_dir in
    /*) ;;
    *) _cnb_layers_dir=$(pwd -P)/$_cnb_layers_dir ;;
esac
_cnb_clean_path "$_cnb_layers_dir"
_cnb_layers_dir=$_cnb_clean

_cnb_each_bp _cnb_bp_env
_cnb_each_bp _cnb_bp_execd
_cnb_tmp_cleanup

if [ -n "$_cnb_direct" ]; then
    _cnb_launch_direct "$@"
else
    _cnb_launch_with_shell "$@"
fi
