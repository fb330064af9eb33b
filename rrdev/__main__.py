from rrdev.cli.app import main

main()
