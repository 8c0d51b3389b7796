from mfa_tui.entry import main

main()
