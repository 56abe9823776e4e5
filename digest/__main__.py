from digest.cli import main

# Guarded: delivery workers are spawned processes, which import the main module again.
if __name__ == "__main__":
    main(prog_name="digest")
