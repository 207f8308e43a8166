"""Calls across switches: the seam between a call's home switch and the switches where
its devices are (SCALE.md "Home node and remote legs").

- ``frames``: what switches tell each other.
- ``directory``: where a user's devices are (``DeviceDirectory``, ``DeviceBook``).
- ``remote_legs``: the home's side of a device on another switch.
- ``proxy_legs``: a switch's side of its own device in a call homed elsewhere.
- ``agent_claims``: support agents' ``max_chats`` counted across switches.
- ``boards``: live support's boards and Queue requests across switches;
  ``reoffers``: waiting chats offered again when an agent changes on another switch.
- ``group_homes``: one home per group's live call.
- ``seat_parts``: what the call core and the devices are given of a switch's place in
  the cluster (its registrations in the book, stand-ins, proxy legs, claims, homes).
- ``snapshots``: each registration's snapshot in the book, under its token's hash, for
  a resume on another switch; ``moves``: what a switch remembers while registrations
  move between switches (docs 12.43).
- ``seat``: a switch's place in the cluster, built after them, sorting what comes in;
  ``needs``: what it needs of the switch it sits in.
"""
