from iris_reflex.services import auth, users


def test_register_then_login(session):
    users.check_register(session, username="Ada", password="correct horse")
    signed = auth.login(session, username="ada", password="correct horse", ip="1.2.3.4")
    assert auth.authenticate(session, signed.token).user_id == signed.user.id
