from exobridge.cli.app import main

main()
