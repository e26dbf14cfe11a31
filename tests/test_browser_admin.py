"""Browser test of the admin console: an admin creates a user with a role on a phone-sized
screen, signs out, and the new user signs in."""

from test_browser import browser, server, sign_in  # noqa: F401  (fixtures used below)


def test_an_admin_creates_a_user_who_then_signs_in(browser, server):  # noqa: F811
    base, world = server
    world.users.create("root", "pw-root", ["admin"])
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "root")
    page.click("header >> text=Admin")
    page.wait_for_load_state()
    assert page.url.endswith("/admin/users")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.click("text=New user")
    page.wait_for_load_state()
    page.fill("input[name=username]", "nina")
    page.fill("input[name=display_name]", "Nina Ng")
    page.fill("input[name=email]", "nina@example.com")
    page.check("input[name=roles][value=manager]")
    # a mistake first: the passwords differ, and the error sits next to the second one
    page.fill("input[name=password]", "nina-secret-7")
    page.fill("input[name=password2]", "nina-secret-8")
    page.click("form.admin-form button[type=submit]")
    page.wait_for_load_state()
    assert "do not match" in page.locator("#field-password2").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.fill("input[name=password]", "nina-secret-7")
    page.fill("input[name=password2]", "nina-secret-7")
    page.click("form.admin-form button[type=submit]")
    page.wait_for_load_state()
    assert "User nina was created." in page.inner_text("main")
    assert world.users.get(world.users.by_username("nina"))["roles"] == ["manager"]
    page.click("header >> text=Sign out")
    page.wait_for_load_state()
    assert "/login" in page.url
    page.fill("input[name=username]", "nina")
    page.fill("input[name=password]", "nina-secret-7")
    page.press("input[name=password]", "Enter")
    page.wait_for_load_state()
    assert "/login" not in page.url
    assert "Nina Ng" in page.inner_text("header")
    assert page.locator("header >> text=Admin").count() == 0  # a manager is no admin
    assert errors == []
    page.close()


def test_the_audit_log_on_a_phone_shows_local_times_and_filters_in_that_zone(browser, server):  # noqa: F811,E501
    base, world = server
    world.users.create("auditor", "pw-auditor", ["admin"])
    context = browser.new_context(viewport={"width": 390, "height": 844},
                                  timezone_id="Asia/Shanghai", locale="en-GB")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "auditor")
    page.goto(base + "/admin/audit")
    first = page.locator("table.audit-log time").first
    assert first.get_attribute("title").endswith(" UTC")  # the server's UTC text, kept
    assert "UTC" not in first.inner_text()  # shown in the browser's zone instead
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.select_option("select[name=entity]", "user")
    page.click("form.console-filters button[type=submit]")
    page.wait_for_load_state()
    assert "tz=Asia%2FShanghai" in page.url and "entity=user" in page.url
    assert page.locator("table.audit-log tbody tr").count() >= 1  # the account's creation
    assert errors == []
    context.close()
