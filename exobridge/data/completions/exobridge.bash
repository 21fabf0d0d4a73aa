_exobridge_completion() {
    local IFS=$'\n'
    local -a response
    local item value word=${COMP_WORDS[COMP_CWORD]}
    # Readline replaces only the text after the last word-break character: none when the word is `:` or `=`.
    [[ -n $word && -z ${word//[$COMP_WORDBREAKS]/} ]] && word=
    mapfile -t response < <(env _EXOBRIDGE_COMPLETE=complete_bash \
        _TYPER_COMPLETE_ARGS="${COMP_LINE:0:COMP_POINT}" \
        _EXOBRIDGE_COMPLETE_WORD="$word" "$1" 2>/dev/null)
    COMPREPLY=()
    for item in "${response[@]}"; do
        value=${item#*,}
        case $item in
            plain,*)
                COMPREPLY+=("$value")
                [[ $value == *: ]] && compopt -o nospace 2>/dev/null
                ;;
            file,*) compopt -o default 2>/dev/null ;;
            dir,*) compopt -o dirnames 2>/dev/null ;;
        esac
    done
    return 0
}

complete -o nosort -F _exobridge_completion exobridge
