from services.routing.app import main

main()
