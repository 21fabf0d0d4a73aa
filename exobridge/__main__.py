from exobridge.cli import main

main()
