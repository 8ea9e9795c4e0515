def test_livez(client):
    response = client.get("/livez")
    assert response.status_code == 200
    assert response.mimetype == "application/health+json"
