from smoltbot_cli.main import main

main()
