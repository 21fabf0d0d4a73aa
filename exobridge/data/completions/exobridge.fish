function _exobridge_completion
    set -l response (env _EXOBRIDGE_COMPLETE=complete_fish \
        _TYPER_COMPLETE_ARGS=(commandline -cp | string collect) exobridge 2>/dev/null)
    for item in $response
        set -l parts (string split -m 1 , -- $item)
        switch $parts[1]
            case plain
                printf '%s\n' $parts[2]
            case dir file
                # `--key-file=<TAB>`: complete the path after the `=`, keeping the option in front.
                set -l token (commandline -ct)
                set -l option (string match -r -- '^-[^=]*=' $token; or echo '')
                set -l path (string replace -r -- '^-[^=]*=' '' $token)
                set -l found
                if test $parts[1] = dir
                    set found (__fish_complete_directories $path)
                else
                    set found (__fish_complete_path $path)
                end
                for entry in $found
                    printf '%s%s\n' $option[1] $entry
                end
        end
    end
end

complete --command exobridge --no-files --arguments "(_exobridge_completion)"
