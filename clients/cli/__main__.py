from fedpark.clients.cli.main import main

main()
