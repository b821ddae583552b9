"""Print "BEARER CSRF" for a sidebar session on a running sandbox app (for schemathesis in CI).

Opens ticket 102 the way the sandbox helpdesk does: a freshly signed launch POSTed from the
app's own origin.
"""

import html
import re
import sys

import requests

base = sys.argv[1].rstrip("/")
page = requests.get(f"{base}/sandbox/launch/102", timeout=10).text
action = html.unescape(re.search(r'action="([^"]+)"', page).group(1))
token = re.search(r'name="token" value="([^"]+)"', page).group(1)
sidebar = requests.post(f"{base}{action}", data={"token": token}, headers={"Origin": base},
                        timeout=10).text
bearer = re.search(r'data-session="([^"]+)"', sidebar).group(1)
csrf = re.search(r'data-csrf="([^"]+)"', sidebar).group(1)
print(bearer, csrf)
