from mfa_tui.cli import main

main()
