print("KTAP version 1\n1..1\nok 1 placeholder_to_see_the_pipeline")
