from rrdev.cli import main

main()
