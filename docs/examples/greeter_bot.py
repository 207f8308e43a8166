"""A greeter in the support queue: a Switchboard bot that answers every chat offered to it,
greets the visitor by name, and answers a few words until the visitor leaves.

Give it a user account that is an agent of the queue, e.g. in the server's config:

    [tenants."example.com".users.greeter]
    dn = "Greeter"
    password = "…"

    [tenants."example.com".queues.support]
    agents = ["greeter", "alice", "bob"]

and run it next to the server:

    .venv/bin/python docs/examples/greeter_bot.py --sip greeter --password …

It answers every chat it is offered, so put it in a queue of its own if the people in the
queue should get the visitors instead. See docs/bots.md for the client API it uses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl

from signaling.appwebsocket.bot import Bot, Chat, ChatEnded

REPLIES = {
    "hours": "We are here from 9:00 to 18:00, Monday to Friday.",
    "order": "Tell me your order number and a colleague will look it up.",
    "bye": "Goodbye, and thank you for visiting!",
}


async def greet(chat: Chat) -> None:
    """One chat: answer it, say hello, then answer each message until it ends."""
    await chat.answer()
    name = chat.peer_name or "there"
    await chat.typing()
    await chat.send(f"Hello {name}! I am the greeter. Ask me about our hours or an order.")
    with contextlib.suppress(ChatEnded):
        while True:
            message = await chat.receive()
            words = message.data.lower()
            reply = next((text for key, text in REPLIES.items() if key in words), None)
            await chat.send(reply or "Thank you! A colleague will be with you shortly.")
            if reply == REPLIES["bye"]:
                await chat.release()


async def main() -> None:
    parser = argparse.ArgumentParser(description="A greeter bot for a support queue.")
    parser.add_argument(
        "--url",
        default="ws://127.0.0.1:8080/PBX0/APPS/websocket",
        help="the hub's AppWebsocket (wss://… with TLS)",
    )
    parser.add_argument("--sip", default="greeter", help="the bot's user account")
    parser.add_argument("--password", required=True)
    parser.add_argument("--domain", default="", help="its tenant (default: the server's)")
    parser.add_argument("--cafile", help="trust this certificate (a test server's own)")
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    bot = Bot(args.url, sip=args.sip, password=args.password, domain=args.domain, ssl=context)
    async with bot:
        print(f"greeter: logged in as {args.sip} in {bot.domain}", flush=True)
        chats = set()
        async for chat in bot.offers():
            task = asyncio.create_task(greet(chat))
            chats.add(task)  # keep a reference until it is done
            task.add_done_callback(chats.discard)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
