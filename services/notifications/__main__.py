from services.notifications.app import main

main()
