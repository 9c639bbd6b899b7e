"""(re-exports are added as the package grows)"""
