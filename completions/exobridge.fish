function _exobridge_completion
    set -l response (env _EXOBRIDGE_COMPLETE=complete_fish \
        _TYPER_COMPLETE_ARGS=(commandline -cp | string collect) exobridge 2>/dev/null)
    for item in $response
        set -l parts (string split -m 1 , -- $item)
        switch $parts[1]
            case plain
                printf '%s\n' $parts[2]
            case dir
                __fish_complete_directories (commandline -ct)
            case file
                __fish_complete_path (commandline -ct)
        end
    end
end

complete --command exobridge --no-files --arguments "(_exobridge_completion)"
