/* keeps test_support a valid library before any support file exists */
