from ptypinn.cli import main

main()
