"""A test-only SmartCard-HSM: the card, its flash file, and the vpcd link that puts it in a pcscd reader.

Written from the published SmartCard-HSM command set (the one Pico HSM, SmartCard-HSM and Nitrokey HSM 2
speak) and from the APDUs OpenSC 0.23's ``sc-hsm`` driver sends, for data objects only: no keys, no
secure messaging. Never shipped: it lives with devcluster, which no image contains.
"""
