from benchmarks.run import cli

cli()
