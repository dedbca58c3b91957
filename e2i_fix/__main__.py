from e2i_fix._main import entry

if __name__ == "__main__":
    entry()
